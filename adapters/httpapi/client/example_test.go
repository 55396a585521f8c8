package client_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"

	"github.com/jetprop/jetprop/adapters/httpapi"
	"github.com/jetprop/jetprop/adapters/httpapi/client"
	"github.com/jetprop/jetprop/engine/service"
	"github.com/jetprop/jetprop/events"
	"github.com/jetprop/jetprop/projections"
)

func Example() {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	srv := httptest.NewServer(memoryAPI(ctx, &wg))
	defer srv.Close()

	c := client.New(srv.URL, nil)
	task, err := c.CreateTask(ctx, httpapi.TaskRequest{Name: "add", ImageURL: "ghcr.io/example/add:1", Inputs: []string{"1", "2"}})
	if err != nil {
		panic(err)
	}
	fmt.Println(task.Name, task.Status, task.Inputs)

	_, err = c.StartTask(ctx, task.ID)
	fmt.Println(client.StatusCode(err), err)
	// Output:
	// add pending [1 2]
	// 409 no alive proplet to run the task (HTTP 409)
}

// memoryAPI serves the API over an in-memory event store, without a module
// store; its projections follow the store until ctx is done.
func memoryAPI(ctx context.Context, wg *sync.WaitGroup) http.Handler {
	store, codec := events.NewMemory(), events.DefaultCodec()
	tasks, devices := projections.NewTasks(codec), projections.NewDevices(codec)
	wg.Go(func() { _ = projections.Follow(ctx, store, tasks) })
	wg.Go(func() { _ = projections.Follow(ctx, store, devices) })
	h := service.NewHandler(store, codec, service.SystemClock{}, service.NewULIDs())
	return httpapi.New(service.New(h, tasks, devices, nil), store)
}

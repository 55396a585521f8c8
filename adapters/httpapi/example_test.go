package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"

	"github.com/jetprop/jetprop/adapters/httpapi"
	"github.com/jetprop/jetprop/engine/service"
	"github.com/jetprop/jetprop/events"
	"github.com/jetprop/jetprop/projections"
)

// The API over an in-memory event store. Tasks here name an image instead
// of carrying a module, so no module store is needed.
func Example() {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()

	store, codec := events.NewMemory(), events.DefaultCodec()
	tasks, devices := projections.NewTasks(codec), projections.NewDevices(codec)
	wg.Go(func() { _ = projections.Follow(ctx, store, tasks) })
	wg.Go(func() { _ = projections.Follow(ctx, store, devices) })
	h := service.NewHandler(store, codec, service.SystemClock{}, service.NewULIDs())
	srv := httptest.NewServer(httpapi.New(service.New(h, tasks, devices, nil), store))
	defer srv.Close()

	body := `{"name": "add", "image_url": "ghcr.io/example/add:1", "inputs": [10, "20"]}`
	resp, err := http.Post(srv.URL+"/tasks", "application/json", strings.NewReader(body))
	if err != nil {
		panic(err)
	}
	var task httpapi.Task
	_ = json.NewDecoder(resp.Body).Decode(&task)
	resp.Body.Close()
	fmt.Println(resp.StatusCode, task.Name, task.Status, task.State, task.Inputs)

	resp, err = http.Post(srv.URL+"/tasks/"+task.ID+"/start", "", nil)
	if err != nil {
		panic(err)
	}
	var failure httpapi.Error
	_ = json.NewDecoder(resp.Body).Decode(&failure)
	resp.Body.Close()
	fmt.Println(resp.StatusCode, failure.Error)
	// Output:
	// 201 add pending 0 [10 20]
	// 409 no alive proplet to run the task
}

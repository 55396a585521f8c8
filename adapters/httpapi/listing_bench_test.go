package httpapi_test

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/jetprop/jetprop/adapters/httpapi"
	"github.com/jetprop/jetprop/engine/service"
	"github.com/jetprop/jetprop/events"
	"github.com/jetprop/jetprop/projections"
	"github.com/jetprop/jetprop/testing/replay"
)

// listingAPI is the API over read models holding n devices (every tenth
// offline) with 0 to 4 active tasks each, filled by applying envelopes
// directly: no store is followed. It returns the active tasks per device.
func listingAPI(b testing.TB, n int) (http.Handler, map[string]int) {
	b.Helper()
	load := map[string]int{}
	codec, t0 := events.DefaultCodec(), time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	tasks, devices := projections.NewTasks(codec), projections.NewDevices(codec)
	rng := rand.New(rand.NewPCG(uint64(n), 2))
	var devSeq, taskSeq uint64
	apply := func(p projections.Projection, seq *uint64, agg events.Aggregate, ev events.Event) {
		*seq++
		env, err := events.Wrap(agg, fmt.Sprintf("e%d", *seq), events.Meta{Time: t0}, ev)
		if err != nil {
			b.Fatal(err)
		}
		env.Seq = *seq
		if err := p.Apply(env); err != nil {
			b.Fatal(err)
		}
	}
	for _, i := range rng.Perm(n) {
		id := fmt.Sprintf("dev-%05d", i)
		apply(devices, &devSeq, events.DeviceAggregate(id), events.DeviceAnnounced{Metadata: events.DeviceMetadata{Hostname: id, OS: "linux"}})
		if i%10 == 9 {
			apply(devices, &devSeq, events.DeviceAggregate(id), events.DeviceOffline{Reason: "last will"})
		}
		load[id] = rng.IntN(5)
		for k := range load[id] {
			tid := fmt.Sprintf("t-%05d-%d", i, k)
			apply(tasks, &taskSeq, events.TaskAggregate(tid), events.TaskCreated{Name: "add", ImageURL: "x"})
			apply(tasks, &taskSeq, events.TaskAggregate(tid), events.TaskScheduled{Device: id, Attempt: 1})
		}
	}
	store := events.NewMemory()
	h := service.NewHandler(store, codec, replay.NewFixedClock(t0, 0), replay.NewSeqIDs("b-"))
	return httpapi.New(service.New(h, tasks, devices, nil), store), load
}

// get answers GET url in process and returns the body.
func get(b testing.TB, api http.Handler, url string) []byte {
	b.Helper()
	rec := httptest.NewRecorder()
	api.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, url, nil))
	if rec.Code != http.StatusOK {
		b.Fatalf("GET %s: %d %s", url, rec.Code, rec.Body)
	}
	return rec.Body.Bytes()
}

// BenchmarkListing: GET /proplets and GET /devices on a fleet of 10,000
// (and 1,000): one page of 100 from the middle, and the whole fleet walked
// page by page (one op is the whole walk), as a client listing everything
// does. Handlers are called in process: no network.
//
//	go test -run '^$' -bench Listing -benchmem ./adapters/httpapi/
func BenchmarkListing(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		api, _ := listingAPI(b, n)
		for _, route := range []string{"/proplets", "/devices"} {
			b.Run(fmt.Sprintf("devices=%d%s/page=100", n, route), func(b *testing.B) {
				b.ReportAllocs()
				url := fmt.Sprintf("%s?offset=%d&limit=100", route, n/2)
				for b.Loop() {
					get(b, api, url)
				}
			})
			b.Run(fmt.Sprintf("devices=%d%s/all-by-1000", n, route), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					for off := 0; off < n; off += 1000 {
						get(b, api, fmt.Sprintf("%s?offset=%d&limit=1000", route, off))
					}
				}
			})
			b.Run(fmt.Sprintf("devices=%d%s/get-one", n, route), func(b *testing.B) {
				b.ReportAllocs()
				url := fmt.Sprintf("%s/dev-%05d", route, n/3)
				for b.Loop() {
					get(b, api, url)
				}
			})
		}
	}
}

// BenchmarkListing_Status: one page of 100 with ?status= on a fleet of
// 10,000 (and 1,000) proplets and their ~2 tasks each: a filter reads the
// whole list, so it costs O(items) where an unfiltered page costs
// O(log n + page).
//
//	go test -run '^$' -bench Listing_Status -benchmem ./adapters/httpapi/
func BenchmarkListing_Status(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		api, _ := listingAPI(b, n)
		for _, url := range []string{"/proplets?limit=100", "/proplets?status=inactive&limit=100", "/tasks?limit=100", "/tasks?status=scheduled&limit=100"} {
			b.Run(fmt.Sprintf("devices=%d%s", n, url), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					get(b, api, url)
				}
			})
		}
	}
}

package httpapi_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/jetprop/jetprop/adapters/httpapi"
)

// Pages of GET /proplets and GET /devices, whatever their offset and
// limit, are slices of the whole fleet sorted by id, with its total, and
// a proplet in a page is what GET /proplets/{id} shows.
func TestAPI_ListingPages(t *testing.T) {
	const n = 1234
	api, load := listingAPI(t, n)
	want := make([]string, n)
	for i := range want {
		want[i] = fmt.Sprintf("dev-%05d", i)
	}
	for _, limit := range []int{1, 7, 100, 1000} {
		for _, start := range []int{0, 3, n - 5} {
			t.Run(fmt.Sprintf("limit=%d/from=%d", limit, start), func(t *testing.T) {
				var proplets, devices []string
				for off := start; off < n+limit; off += limit {
					pp := decode[httpapi.PropletList](t, get(t, api, fmt.Sprintf("/proplets?offset=%d&limit=%d", off, limit)))
					dp := decode[httpapi.DeviceList](t, get(t, api, fmt.Sprintf("/devices?offset=%d&limit=%d", off, limit)))
					if pp.Total != n || pp.Offset != off || pp.Limit != limit || dp.Total != n || dp.Offset != off || dp.Limit != limit {
						t.Fatalf("page at %d: proplets %d/%d/%d, devices %d/%d/%d", off, pp.Offset, pp.Limit, pp.Total, dp.Offset, dp.Limit, dp.Total)
					}
					for _, p := range pp.Proplets {
						proplets = append(proplets, p.ID)
						if p.TaskCount != load[p.ID] {
							t.Fatalf("%s: task_count %d, want %d", p.ID, p.TaskCount, load[p.ID])
						}
					}
					for _, d := range dp.Devices {
						devices = append(devices, d.ID)
					}
				}
				if !slices.Equal(proplets, want[start:]) || !slices.Equal(devices, want[start:]) {
					t.Fatalf("pages walked from %d by %d do not make the sorted fleet: %d proplets, %d devices", start, limit, len(proplets), len(devices))
				}
			})
		}
	}
	for _, i := range []int{0, n / 2, n - 1} {
		id := want[i]
		one := decode[httpapi.Proplet](t, get(t, api, "/proplets/"+id))
		page := decode[httpapi.PropletList](t, get(t, api, fmt.Sprintf("/proplets?offset=%d&limit=1", i)))
		if len(page.Proplets) != 1 || page.Proplets[0].ID != id || page.Proplets[0].TaskCount != one.TaskCount || one.TaskCount != load[id] {
			t.Fatalf("GET /proplets/%s = %+v, its page %+v", id, one, page.Proplets)
		}
	}
}

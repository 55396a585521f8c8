package httpapi

import "net/http"

func (a *api) listProplets(w http.ResponseWriter, r *http.Request) {
	p, err := parsePage(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	all := a.svc.ListDevices()
	load := a.svc.TaskLoad()
	start := min(p.offset, len(all))
	end := min(start+p.limit, len(all))
	out := PropletList{Offset: p.offset, Limit: p.limit, Total: len(all), Proplets: make([]Proplet, 0, end-start)}
	for _, d := range all[start:end] {
		out.Proplets = append(out.Proplets, a.proplet(d, load[d.ID]))
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *api) getProplet(w http.ResponseWriter, r *http.Request) {
	d, err := a.svc.GetDevice(r.PathValue("id"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, a.proplet(d, a.svc.TaskLoad()[d.ID]))
}

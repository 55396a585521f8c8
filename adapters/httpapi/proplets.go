package httpapi

import "net/http"

func (a *api) listProplets(w http.ResponseWriter, r *http.Request) {
	p, err := parsePage(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	status, err := statusFilter(r, propletStatuses)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if status != "" {
		writeJSON(w, http.StatusOK, a.propletsWith(status, p))
		return
	}
	devs, total := a.svc.DevicePage(p.offset, p.limit)
	out := PropletList{Offset: p.offset, Limit: p.limit, Total: total, Proplets: make([]Proplet, 0, len(devs))}
	for _, d := range devs {
		out.Proplets = append(out.Proplets, a.proplet(d, a.svc.DeviceLoad(d.ID)))
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *api) getProplet(w http.ResponseWriter, r *http.Request) {
	d, err := a.svc.GetDevice(r.PathValue("id"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, a.proplet(d, a.svc.DeviceLoad(d.ID)))
}

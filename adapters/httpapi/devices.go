package httpapi

import "net/http"

func (a *api) provisionDevice(w http.ResponseWriter, r *http.Request) {
	var req ProvisionRequest
	if err := decodeJSON(http.MaxBytesReader(w, r.Body, maxRequestJSON), &req); err != nil {
		a.fail(w, r, err)
		return
	}
	d, key, err := a.svc.ProvisionDevice(r.Context(), req.ID, req.Legacy)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	out := DeviceFrom(d)
	out.Key = key
	w.Header().Set("Location", "/devices/"+d.ID)
	writeJSON(w, http.StatusCreated, out)
}

func (a *api) listDevices(w http.ResponseWriter, r *http.Request) {
	p, err := parsePage(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	devs, total := a.svc.DevicePage(p.offset, p.limit)
	out := DeviceList{Offset: p.offset, Limit: p.limit, Total: total, Devices: make([]Device, 0, len(devs))}
	for _, d := range devs {
		out.Devices = append(out.Devices, DeviceFrom(d))
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *api) getDevice(w http.ResponseWriter, r *http.Request) {
	d, err := a.svc.GetDevice(r.PathValue("id"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, DeviceFrom(d))
}

func (a *api) revokeDevice(w http.ResponseWriter, r *http.Request) {
	var req RevokeRequest
	if r.ContentLength != 0 { // the body is optional
		if err := decodeJSON(http.MaxBytesReader(w, r.Body, maxRequestJSON), &req); err != nil {
			a.fail(w, r, err)
			return
		}
	}
	d, err := a.svc.RevokeDevice(r.Context(), r.PathValue("id"), req.Reason)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, DeviceFrom(d))
}

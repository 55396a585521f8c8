package wire

import (
	"encoding/json"
	"fmt"

	"github.com/jetprop/jetprop/engine/domain"
)

// MaxMessage is the largest message the decoders accept; anything larger is
// refused before parsing. It is far above any broker's max payload.
const MaxMessage = 64 << 20

// Decode unmarshals a payload into v with a size check and a clear error.
func Decode(b []byte, v any) error {
	if len(b) > MaxMessage {
		return fmt.Errorf("%w: payload of %d bytes", ErrInvalid, len(b))
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%w: %T: %v", ErrInvalid, v, err)
	}
	return nil
}

// DecodeStart decodes and validates a StartRequest.
func DecodeStart(b []byte) (StartRequest, error) {
	var s StartRequest
	if err := Decode(b, &s); err != nil {
		return s, err
	}
	return s, s.Validate()
}

// DecodeStop decodes a StopRequest.
func DecodeStop(b []byte) (StopRequest, error) {
	var s StopRequest
	if err := Decode(b, &s); err != nil {
		return s, err
	}
	if s.ID == "" {
		return s, fmt.Errorf("%w: stop without id", ErrInvalid)
	}
	return s, nil
}

// DecodeDiscovery decodes a Discovery.
func DecodeDiscovery(b []byte) (Discovery, error) {
	var d Discovery
	if err := CheckSize(SuffixCreate, b); err != nil {
		return d, err
	}
	if err := Decode(b, &d); err != nil {
		return d, err
	}
	if d.PropletID == "" {
		return d, fmt.Errorf("%w: discovery without proplet_id", ErrInvalid)
	}
	return d, domain.DeviceMetadata(d.Metadata).Validate()
}

// DecodeAlive decodes a heartbeat or last will.
func DecodeAlive(b []byte) (Alive, error) {
	var a Alive
	if err := CheckSize(SuffixAlive, b); err != nil {
		return a, err
	}
	if err := Decode(b, &a); err != nil {
		return a, err
	}
	if a.PropletID == "" {
		return a, fmt.Errorf("%w: alive without proplet_id", ErrInvalid)
	}
	switch a.Status {
	case StatusAlive, StatusOffline:
	case StatusUnreachable:
		if a.Reason == "" {
			return a, fmt.Errorf("%w: status %q without a reason", ErrInvalid, a.Status)
		}
	default:
		return a, fmt.Errorf("%w: alive with status %q", ErrInvalid, a.Status)
	}
	return a, nil
}

// DecodeAccepted decodes an Accepted.
func DecodeAccepted(b []byte) (Accepted, error) {
	var a Accepted
	if err := CheckSize(SuffixAccepted, b); err != nil {
		return a, err
	}
	if err := Decode(b, &a); err != nil {
		return a, err
	}
	switch {
	case a.TaskID == "":
		return a, fmt.Errorf("%w: accepted without task_id", ErrInvalid)
	case a.Attempt <= 0:
		return a, fmt.Errorf("%w: accepted for task %s without an attempt", ErrInvalid, a.TaskID)
	}
	return a, nil
}

// DecodeResultAck decodes a ResultAck.
func DecodeResultAck(b []byte) (ResultAck, error) {
	var a ResultAck
	if err := Decode(b, &a); err != nil {
		return a, err
	}
	switch {
	case a.TaskID == "":
		return a, fmt.Errorf("%w: result ack without task_id", ErrInvalid)
	case a.Attempt <= 0:
		return a, fmt.Errorf("%w: result ack for task %s without an attempt", ErrInvalid, a.TaskID)
	}
	return a, nil
}

// DecodeResult decodes a Result.
func DecodeResult(b []byte) (Result, error) {
	var r Result
	if err := CheckSize(SuffixResults, b); err != nil {
		return r, err
	}
	if err := Decode(b, &r); err != nil {
		return r, err
	}
	if r.TaskID == "" {
		return r, fmt.Errorf("%w: result without task_id", ErrInvalid)
	}
	return r, nil
}

// DecodeInvoke decodes an InvokeRequest (control/manager/invoke); it is
// bounded like a start, by MaxMessage, and needs an id.
func DecodeInvoke(b []byte) (InvokeRequest, error) {
	var r InvokeRequest
	if err := Decode(b, &r); err != nil {
		return r, err
	}
	if r.ID == "" {
		return r, fmt.Errorf("%w: invoke without id", ErrInvalid)
	}
	return r, nil
}

// DecodeInvokeResult decodes an InvokeResult
// (control/proplet/invoke_results). It shares the result's size bound and
// needs an invocation id: Propeller's manager drops an answer without one,
// and so does jetprop's, since nothing waits for it.
func DecodeInvokeResult(b []byte) (InvokeResult, error) {
	var r InvokeResult
	if err := CheckSize(SuffixInvokeResults, b); err != nil {
		return r, err
	}
	if err := Decode(b, &r); err != nil {
		return r, err
	}
	if r.InvocationID == "" {
		return r, fmt.Errorf("%w: invoke result without invocation_id", ErrInvalid)
	}
	return r, nil
}

// DecodeChunk decodes and validates a Chunk.
func DecodeChunk(b []byte) (Chunk, error) {
	var c Chunk
	if err := Decode(b, &c); err != nil {
		return c, err
	}
	return c, c.Validate()
}

// DecodeTaskMetrics decodes TaskMetrics.
func DecodeTaskMetrics(b []byte) (TaskMetrics, error) {
	var m TaskMetrics
	if err := CheckSize(SuffixTaskMetrics, b); err != nil {
		return m, err
	}
	return m, Decode(b, &m)
}

// DecodePropletMetrics decodes PropletMetrics.
func DecodePropletMetrics(b []byte) (PropletMetrics, error) {
	var m PropletMetrics
	if err := CheckSize(SuffixMetrics, b); err != nil {
		return m, err
	}
	return m, Decode(b, &m)
}

// DecodeModuleRequest decodes and validates a RegistryRequest.
func DecodeModuleRequest(b []byte) (ModuleRequest, error) {
	var r ModuleRequest
	if err := CheckSize(SuffixModuleRequest, b); err != nil {
		return r, err
	}
	if err := Decode(b, &r); err != nil {
		return r, err
	}
	return r, r.Validate()
}

package fleetsim_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/jetprop/jetprop/testing/fleetsim"
)

func TestLatency_Summary(t *testing.T) {
	var l fleetsim.Latency
	for i := 100; i >= 1; i-- { // out of order
		l.Add(time.Duration(i) * time.Millisecond)
	}
	s := l.Summary()
	want := fleetsim.Summary{Count: 100, P50: ms(51), P90: ms(91), P99: ms(100), Max: ms(100)}
	if s != want {
		t.Errorf("summary %+v, want %+v", s, want)
	}
	l.Reset()
	if s := l.Summary(); s != (fleetsim.Summary{}) {
		t.Errorf("after Reset: %+v", s)
	}
}

func ms(n int) fleetsim.Duration { return fleetsim.Duration(time.Duration(n) * time.Millisecond) }

func TestDuration_JSON(t *testing.T) {
	b, err := json.Marshal(struct{ D fleetsim.Duration }{ms(1500)})
	if err != nil || string(b) != `{"D":"1.5s"}` {
		t.Fatalf("marshal: %s %v", b, err)
	}
	var back struct{ D fleetsim.Duration }
	if err := json.Unmarshal(b, &back); err != nil || back.D != ms(1500) {
		t.Fatalf("unmarshal: %v %v", back.D, err)
	}
}

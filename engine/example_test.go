package engine_test

import (
	"errors"
	"fmt"

	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/engine/domain"
)

func ExampleDecideDevice() {
	var d engine.Device
	evs, _ := engine.DecideDevice(d, engine.MarkOffline{ID: "pi-9", Reason: "last will"})
	fmt.Println(len(evs), "events: a last will never creates a device")
	evs, _ = engine.DecideDevice(d, engine.Heartbeat{ID: "pi-9"})
	fmt.Println(evs[0].EventType())
	// Output:
	// 0 events: a last will never creates a device
	// device.alive
}

func ExampleParseArtifactRef() {
	for _, s := range []string{"vision:1.2", "vision", "ghcr.io/x/vision:1"} {
		ref, err := engine.ParseArtifactRef(s)
		fmt.Printf("%q %q %v\n", ref.Name, ref.Tag, errors.Is(err, domain.ErrInvalid))
	}
	// Output:
	// "vision" "1.2" false
	// "vision" "latest" false
	// "" "" true
}

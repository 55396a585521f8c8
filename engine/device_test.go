package engine_test

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/engine/domain"
	"github.com/jetprop/jetprop/events"
)

// deviceOf folds evs into a device "d1", one second and one sequence apart.
func deviceOf(evs ...events.Event) engine.Device {
	var d engine.Device
	for i, ev := range evs {
		env := events.Envelope{
			ID:        "e" + string(rune('a'+i)),
			Type:      ev.EventType(),
			Aggregate: events.DeviceAggregate("d1"),
			Time:      t0.Add(time.Duration(i) * time.Second),
			Seq:       uint64(i + 1),
		}
		d = d.Apply(env, ev)
	}
	return d
}

var (
	meta      = events.DeviceMetadata{Hostname: "pi-1", OS: "linux", CPUArch: "arm64", Tags: []string{"lab"}, TotalMemoryBytes: 1 << 30}
	announced = events.DeviceAnnounced{Namespace: "ns", Metadata: meta}
	alive     = events.DeviceAlive{Namespace: "ns"}
	offline   = events.DeviceOffline{Reason: "last will"}

	devNone      = engine.Device{}
	devAnnounced = deviceOf(announced)
	devAlive     = deviceOf(announced, alive)
	devOffline   = deviceOf(announced, alive, offline)
	devHeartOnly = deviceOf(alive) // never announced itself

	keyHash        = domain.HashSecret("jpd_key")
	provisioned    = events.DeviceProvisioned{KeyHash: keyHash}
	revoked        = events.DeviceRevoked{Reason: "lost"}
	provision      = engine.ProvisionDevice{ID: "d1", KeyHash: keyHash}
	revoke         = engine.RevokeDevice{ID: "d1", Reason: "lost"}
	devProvisioned = deviceOf(provisioned, announced, alive)
	devRevoked     = deviceOf(provisioned, announced, alive, revoked)
)

type otherDeviceCommand struct{}

func (otherDeviceCommand) DeviceID() string { return "d1" }

type decideDeviceTest struct {
	name    string
	device  engine.Device
	cmd     engine.DeviceCommand
	want    []events.Event
	wantErr error
}

func runDecideDevice(t *testing.T, tests []decideDeviceTest) {
	t.Helper()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := engine.DecideDevice(tc.device, tc.cmd)
			checkErr(t, err, tc.wantErr)
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("events = %#v, want %#v", got, tc.want)
			}
		})
	}
}

// boundedMeta has every metadata field at its bound.
var boundedMeta = events.DeviceMetadata{
	Description: strings.Repeat("d", domain.MaxMetadataDescription), Hostname: strings.Repeat("h", domain.MaxMetadataField),
	Tags: slices.Repeat([]string{strings.Repeat("t", domain.MaxMetadataTag)}, domain.MaxMetadataTags),
}

func TestDecideDevice(t *testing.T) {
	announce := engine.Announce{ID: "d1", Namespace: "ns", Metadata: meta}
	heartbeat := engine.Heartbeat{ID: "d1", Namespace: "ns"}
	lastWill := engine.MarkOffline{ID: "d1", Reason: "last will"}
	otherMeta := meta
	otherMeta.Hostname = "pi-2"
	runDecideDevice(t, []decideDeviceTest{
		{name: "announce new", device: devNone, cmd: announce, want: evs(announced)},
		{name: "announce again", device: devAnnounced, cmd: announce},
		{name: "announce while alive", device: devAlive, cmd: announce},
		{name: "announce new metadata", device: devAlive, cmd: engine.Announce{ID: "d1", Namespace: "ns", Metadata: otherMeta},
			want: evs(events.DeviceAnnounced{Namespace: "ns", Metadata: otherMeta})},
		{name: "announce new namespace", device: devAlive, cmd: engine.Announce{ID: "d1", Namespace: "other", Metadata: meta},
			want: evs(events.DeviceAnnounced{Namespace: "other", Metadata: meta})},
		{name: "announce after offline", device: devOffline, cmd: announce, want: evs(announced)},
		{name: "announce after heartbeats only", device: devHeartOnly, cmd: announce, want: evs(announced)},
		{name: "heartbeat from unknown", device: devNone, cmd: heartbeat, want: evs(alive)},
		{name: "heartbeat after announce", device: devAnnounced, cmd: heartbeat, want: evs(alive)},
		{name: "heartbeat while alive", device: devAlive, cmd: heartbeat},
		{name: "heartbeat while alive, other namespace", device: devAlive, cmd: engine.Heartbeat{ID: "d1", Namespace: "x"}},
		{name: "heartbeat after offline", device: devOffline, cmd: heartbeat, want: evs(alive)},
		{name: "last will of unknown", device: devNone, cmd: lastWill},
		{name: "last will after announce", device: devAnnounced, cmd: lastWill, want: evs(offline)},
		{name: "last will while alive", device: devAlive, cmd: lastWill, want: evs(offline)},
		{name: "last will while offline", device: devOffline, cmd: lastWill},
		{name: "last will published by the broker", device: devAlive, cmd: engine.MarkOffline{ID: "d1", Reason: "last will", LastWill: true},
			want: evs(events.DeviceOffline{Reason: "last will", LastWill: true})},
		{name: "announce that it accepts, on its own topics", device: devAlive, cmd: engine.Announce{ID: "d1", Namespace: "ns", Metadata: meta, OwnTopics: true, Accepts: true},
			want: evs(events.DeviceAnnounced{Namespace: "ns", Metadata: meta, OwnTopics: true, Accepts: true})},
		{name: "accepts on the shared topics means nothing", device: devAlive, cmd: engine.Announce{ID: "d1", Namespace: "ns", Metadata: meta, Accepts: true}},
		{name: "announce on its own topics", device: devAlive, cmd: engine.Announce{ID: "d1", Namespace: "ns", Metadata: meta, OwnTopics: true},
			want: evs(events.DeviceAnnounced{Namespace: "ns", Metadata: meta, OwnTopics: true})},
		{name: "announce a description over its bound", device: devAlive, cmd: engine.Announce{ID: "d1", Namespace: "ns",
			Metadata: events.DeviceMetadata{Description: strings.Repeat("x", domain.MaxMetadataDescription+1)}}, wantErr: domain.ErrMetadataTooLarge},
		{name: "announce too many tags", device: devNone, cmd: engine.Announce{ID: "d1",
			Metadata: events.DeviceMetadata{Tags: make([]string, domain.MaxMetadataTags+1)}}, wantErr: domain.ErrInvalid},
		{name: "announce at the bounds", device: devNone, cmd: engine.Announce{ID: "d1", Metadata: boundedMeta},
			want: evs(events.DeviceAnnounced{Metadata: boundedMeta})},
		{name: "provision", device: devNone, cmd: provision, want: evs(provisioned)},
		{name: "provision a device that announced itself", device: devAlive, cmd: provision, want: evs(provisioned)},
		{name: "provision twice", device: devProvisioned, cmd: provision, wantErr: domain.ErrExists},
		{name: "provision without a key hash", device: devNone, cmd: engine.ProvisionDevice{ID: "d1", KeyHash: "x"}, wantErr: domain.ErrInvalid},
		{name: "revoke", device: devProvisioned, cmd: revoke, want: evs(revoked)},
		{name: "revoke twice", device: devRevoked, cmd: revoke},
		{name: "revoke one never provisioned", device: devAlive, cmd: revoke, wantErr: domain.ErrNotFound},
		{name: "a new key after a revoke", device: devRevoked, cmd: provision, want: evs(provisioned)},
		{name: "announce when revoked", device: devRevoked, cmd: announce, wantErr: domain.ErrInvalidState},
		{name: "heartbeat when revoked", device: devRevoked, cmd: heartbeat, wantErr: domain.ErrInvalidState},
		{name: "last will when revoked", device: devRevoked, cmd: lastWill},
		{name: "empty id", device: devNone, cmd: engine.Heartbeat{}, wantErr: domain.ErrInvalid},
		{name: "id with a dot", device: devNone, cmd: engine.Announce{ID: "a.b"}, wantErr: domain.ErrInvalid},
		{name: "id with a wildcard", device: devNone, cmd: engine.MarkOffline{ID: ">"}, wantErr: domain.ErrInvalid},
		{name: "unknown command", device: devAlive, cmd: otherDeviceCommand{}, wantErr: domain.ErrInvalid},
	})
}

func TestDevice_Apply(t *testing.T) {
	tests := []struct {
		name string
		got  engine.Device
		want engine.Device
	}{
		{
			name: "announced",
			got:  devAnnounced,
			want: engine.Device{ID: "d1", State: engine.DeviceAnnounced, Namespace: "ns", Metadata: meta, Announced: true, FirstSeen: t0, LastChange: t0, Seq: 1},
		},
		{
			name: "alive keeps namespace when heartbeat has none",
			got:  deviceOf(announced, events.DeviceAlive{}),
			want: engine.Device{ID: "d1", State: engine.DeviceAlive, Namespace: "ns", Metadata: meta, Announced: true, FirstSeen: t0, LastChange: t0.Add(time.Second), Seq: 2},
		},
		{
			name: "offline",
			got:  devOffline,
			want: engine.Device{ID: "d1", State: engine.DeviceOffline, Namespace: "ns", Metadata: meta, Announced: true, FirstSeen: t0, LastChange: t0.Add(2 * time.Second), Seq: 3},
		},
		{
			name: "heartbeat only",
			got:  devHeartOnly,
			want: engine.Device{ID: "d1", State: engine.DeviceAlive, Namespace: "ns", FirstSeen: t0, LastChange: t0, Seq: 1},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !reflect.DeepEqual(tc.got, tc.want) {
				t.Fatalf("got  %+v\nwant %+v", tc.got, tc.want)
			}
		})
	}
}

func TestDeviceState(t *testing.T) {
	tests := []struct {
		state engine.DeviceState
		name  string
		up    bool
	}{
		{engine.DeviceUnknown, "unknown", false},
		{engine.DeviceAnnounced, "announced", true},
		{engine.DeviceAlive, "alive", true},
		{engine.DeviceOffline, "offline", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.state.String(); got != tc.name {
				t.Errorf("String() = %q", got)
			}
			if got := tc.state.Up(); got != tc.up {
				t.Errorf("Up() = %v", got)
			}
			b, err := json.Marshal(tc.state)
			if err != nil || string(b) != `"`+tc.name+`"` {
				t.Fatalf("Marshal = %s, %v", b, err)
			}
			var back engine.DeviceState
			if err := json.Unmarshal(b, &back); err != nil || back != tc.state {
				t.Fatalf("Unmarshal = %v, %v", back, err)
			}
		})
	}
	t.Run("bad", func(t *testing.T) {
		var s engine.DeviceState
		if err := s.UnmarshalText([]byte("zombie")); err == nil {
			t.Fatal("UnmarshalText(zombie) succeeded")
		}
		if got := engine.DeviceState(9).String(); got != "state(9)" {
			t.Errorf("String() = %q", got)
		}
	})
}

// TestDecideDevice_EmptyTags: a re-announce with "tags": [] of a device that
// announced itself without tags changes nothing.
func TestDecideDevice_EmptyTags(t *testing.T) {
	var d engine.Device
	evs, err := engine.DecideDevice(d, engine.Announce{ID: "p1", Metadata: events.DeviceMetadata{OS: "linux"}})
	if err != nil || len(evs) != 1 {
		t.Fatalf("first announce: %v, %v", evs, err)
	}
	d = d.Apply(events.Envelope{Aggregate: events.DeviceAggregate("p1"), Seq: 1, Time: t0}, evs[0])
	evs, err = engine.DecideDevice(d, engine.Announce{ID: "p1", Metadata: events.DeviceMetadata{OS: "linux", Tags: []string{}}})
	if err != nil || len(evs) != 0 {
		t.Fatalf("an identical re-announce decided %v, %v", evs, err)
	}
}

func TestDecideDevice_Unreachable(t *testing.T) {
	unreachable := events.DeviceUnreachable{Reason: "did not accept a start"}
	devUnreachable := deviceOf(announced, alive, unreachable) // marked at t0+2s
	mark := engine.MarkUnreachable{ID: "d1", Reason: unreachable.Reason}
	beat := func(after time.Duration) engine.Heartbeat {
		return engine.Heartbeat{ID: "d1", Namespace: "ns", At: t0.Add(2*time.Second + after)}
	}
	runDecideDevice(t, []decideDeviceTest{
		{name: "mark an alive device", device: devAlive, cmd: mark, want: evs(unreachable)},
		{name: "mark an announced device", device: devAnnounced, cmd: mark, want: evs(unreachable)},
		{name: "mark again, same reason", device: devUnreachable, cmd: mark},
		{name: "mark again, another reason", device: devUnreachable, cmd: engine.MarkUnreachable{ID: "d1", Reason: "refused"},
			want: evs(events.DeviceUnreachable{Reason: "refused"})},
		{name: "mark an offline device", device: devOffline, cmd: mark},
		{name: "mark an unknown device", device: devNone, cmd: mark},
		{name: "mark without a reason", device: devAlive, cmd: engine.MarkUnreachable{ID: "d1"}, wantErr: domain.ErrInvalid},
		{name: "reachable", device: devUnreachable, cmd: engine.MarkReachable{ID: "d1"}, want: evs(events.DeviceReachable{})},
		{name: "reachable when reachable", device: devAlive, cmd: engine.MarkReachable{ID: "d1"}},
		{name: "heartbeat soon after", device: devUnreachable, cmd: beat(engine.UnreachableRetry - time.Second)},
		{name: "heartbeat without a time", device: devUnreachable, cmd: engine.Heartbeat{ID: "d1", Namespace: "ns"}},
		{name: "heartbeat after the retry period", device: devUnreachable, cmd: beat(engine.UnreachableRetry), want: evs(events.DeviceReachable{})},
		{name: "announce again", device: devUnreachable, cmd: engine.Announce{ID: "d1", Namespace: "ns", Metadata: meta}, want: evs(announced)},
	})
}

func TestDevice_ApplyUnreachable(t *testing.T) {
	unreachable := events.DeviceUnreachable{Reason: "refused"}
	d := deviceOf(announced, alive, unreachable)
	if d.Unreachable != "refused" || !d.UnreachableSince.Equal(t0.Add(2*time.Second)) || d.Placeable() {
		t.Fatalf("unreachable device = %+v, placeable %v", d, d.Placeable())
	}
	for name, d := range map[string]engine.Device{
		"reachable": deviceOf(announced, alive, unreachable, events.DeviceReachable{}),
		"announced": deviceOf(announced, alive, unreachable, announced),
	} {
		if d.Unreachable != "" || !d.UnreachableSince.IsZero() || !d.Placeable() {
			t.Errorf("%s: device = %+v, placeable %v", name, d, d.Placeable())
		}
	}
	if d := deviceOf(announced, alive, unreachable, offline); d.Unreachable != "" {
		t.Errorf("offline device still unreachable: %+v", d)
	}
}

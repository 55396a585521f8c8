package mqtt_test

import (
	"cmp"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/nats-io/nats.go"

	"github.com/jetprop/jetprop/adapters/mqtt"
	"github.com/jetprop/jetprop/adapters/mqtt/wire"
	"github.com/jetprop/jetprop/events"
)

// flood is one run: a device floods its results topic over MQTT at rate
// messages a second for as long as another device takes to send results
// results, one every gap; the same results are sent first with no flood.
type flood struct {
	rate    int
	results int
	gap     time.Duration
	// unlimited turns the rate limits off (a comparison, not a test: the
	// flood is not dropped).
	unlimited bool
	// limit, when set, is the devices' work budget instead of the default.
	limit mqtt.RateLimit
}

// TestInbound_Flood: a device flooding results (of tasks that do not
// exist) over MQTT is rate limited: the excess is dropped and counted for
// it, and another device's results are all recorded meanwhile.
func TestInbound_Flood(t *testing.T) {
	// A budget below the flood's rate, as the default's is below 10,000/s.
	q, f := runFlood(t, flood{rate: 3000, results: 20, gap: 20 * time.Millisecond, limit: mqtt.RateLimit{Rate: 500, Burst: 200}})
	t.Logf("result delay without flood: %s; with a flood of 3,000 msgs/s: %s", q, f)
}

// TestInbound_FloodLatency measures how long a device's results take
// from its publish to their task.completed event while another device
// floods at 10,000 messages a second, against the same without the flood.
//
//	JETPROP_FLOOD_BENCH=1 go test -run FloodLatency -v ./adapters/mqtt/ (make flood-bench)
func TestInbound_FloodLatency(t *testing.T) {
	if os.Getenv("JETPROP_FLOOD_BENCH") == "" {
		t.Skip("set JETPROP_FLOOD_BENCH=1 (make flood-bench)")
	}
	// JETPROP_FLOOD_UNLIMITED=1 runs it without the rate limits, to compare.
	q, f := runFlood(t, flood{rate: 10_000, results: 500, gap: 20 * time.Millisecond, unlimited: os.Getenv("JETPROP_FLOOD_UNLIMITED") != ""})
	t.Logf("result delay without flood: %s", q)
	t.Logf("result delay with a flood of 10,000 msgs/s: %s", f)
}

// delays summarizes result delays.
type delays []time.Duration

func (d delays) String() string {
	s := slices.Sorted(slices.Values(d))
	q := func(p float64) time.Duration { return s[int(p*float64(len(s)-1))].Round(10 * time.Microsecond) }
	return fmt.Sprintf("p50 %s p99 %s max %s (%d results)", q(0.5), q(0.99), q(1), len(s))
}

func runFlood(t *testing.T, f flood) (quiet, flooded delays) {
	cfg := mqtt.InboundConfig{WorkLimit: f.limit}
	if f.unlimited {
		cfg.WorkLimit = unlimited
	}
	budget := cmp.Or(f.limit, mqtt.RateLimit{Rate: mqtt.DefaultWorkRate, Burst: mqtt.DefaultWorkBurst})
	rig := newEdgeRig(t, cfg)
	rig.run(t)
	ids := make([]string, 2*f.results)
	for i := range ids {
		ids[i] = "victim-t" + strconv.Itoa(i)
	}
	rig.scheduleTasks(t, ids, func(int) string { return "victim" })
	done := rig.completions(t)
	victim := mqttDevice(t, rig, "victim")
	quiet = sendResults(t, victim, ids[:f.results], f.gap, done)

	flooder := mqttDevice(t, rig, "flooder")
	stop, sent := startFlood(flooder, f.rate)
	start := time.Now()
	flooded = sendResults(t, victim, ids[f.results:], f.gap, done)
	n := stop()
	elapsed := time.Since(start)

	rig.checkSettled(t, uint64(2*f.results)+n)
	s := rig.in.Stats()
	t.Logf("flooder sent %d in %s (%.0f/s); stats %+v; dropped %+v", n, elapsed.Round(time.Millisecond), float64(*sent)/elapsed.Seconds(), s, rig.in.Dropped())
	if f.unlimited {
		return quiet, flooded
	}
	if d := rig.in.Dropped(); len(d) != 1 || d[0].Device != "flooder" || d[0].RateLimited == 0 || d[0].RateLimited != s.IgnoredBy.RateLimited {
		t.Errorf("dropped %+v, want the flooder's alone (%d rate limited)", d, s.IgnoredBy.RateLimited)
	}
	if budget := uint64(float64(budget.Burst) + budget.Rate*(elapsed.Seconds()+1)); s.IgnoredBy.Unknown > budget {
		t.Errorf("%d of the flood let through, more than the budget of %d", s.IgnoredBy.Unknown, budget)
	}
	return quiet, flooded
}

// completions reports each task.completed event's task id and arrival.
func (r *edgeRig) completions(t *testing.T) <-chan completion {
	ch := make(chan completion, 1024)
	sub, err := r.nc.Subscribe(events.TaskAggregate("*").Subject(), func(m *nats.Msg) {
		if m.Header.Get(events.HeaderType) == "task.completed" {
			ch <- completion{id: m.Subject[len(events.TaskAggregate("").Subject()):], at: time.Now()}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	return ch
}

type completion struct {
	id string
	at time.Time
}

// mqttDevice connects a paho client as device id to the rig's broker.
func mqttDevice(t *testing.T, r *edgeRig, id string) paho.Client {
	c := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + r.ns.MQTTAddr()).SetClientID(id).SetCleanSession(true).SetMaxResumePubInFlight(1024))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect %s: %v", id, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(50) })
	return c
}

// sendResults publishes the results of tasks, one every gap, at QoS 1,
// and returns how long each took to be recorded.
func sendResults(t *testing.T, c paho.Client, tasks []string, gap time.Duration, done <-chan completion) delays {
	sentAt := map[string]time.Time{}
	var out delays
	tick := time.NewTicker(gap)
	defer tick.Stop()
	topic := edgeTopics.Topic(wire.OwnTopic(wire.SuffixResults, "victim"))
	deadline := time.After(time.Minute)
	for i := 0; len(out) < len(tasks); {
		select {
		case <-tick.C:
			if i < len(tasks) {
				sentAt[tasks[i]] = time.Now()
				c.Publish(topic, 1, false, fmt.Sprintf(`{"task_id":%q,"results":"ok","attempt":1}`, tasks[i]))
				i++
			}
		case d := <-done:
			if at, ok := sentAt[d.id]; ok {
				out = append(out, d.at.Sub(at))
			}
		case <-deadline:
			t.Fatalf("%d of %d results recorded within a minute", len(out), len(tasks))
		}
	}
	return out
}

// startFlood publishes results of tasks that do not exist on c's own
// topic at rate a second (QoS 0, in a batch every millisecond) until
// stop, which returns how many it sent.
func startFlood(c paho.Client, rate int) (stop func() uint64, sent *uint64) {
	var n uint64
	quit := make(chan struct{})
	var wg sync.WaitGroup
	topic := edgeTopics.Topic(wire.OwnTopic(wire.SuffixResults, "flooder"))
	wg.Go(func() {
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		start := time.Now()
		for {
			select {
			case <-quit:
				return
			case <-tick.C:
			}
			for due := uint64(time.Since(start).Seconds() * float64(rate)); n < due; n++ {
				c.Publish(topic, 0, false, `{"task_id":"nosuch-`+strconv.FormatUint(n, 10)+`","results":"x","attempt":1}`)
			}
		}
	})
	return func() uint64 { close(quit); wg.Wait(); return n }, &n
}

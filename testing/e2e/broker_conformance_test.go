package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/jetprop/jetprop/adapters/mqtt/wire"
	"github.com/jetprop/jetprop/adapters/natsserver"
	"github.com/jetprop/jetprop/cmd/jetprop/app"
	"github.com/jetprop/jetprop/testing/natstest"
)

// TestBroker_Conformance checks the MQTT 3.1.1 behaviours brokers are
// compared by against jetprop's listener (nats-server's, configured by
// app.Start as `jetprop up` configures it), with Debian's mosquitto_pub and
// mosquitto_sub, and a hand-written client where mosquitto cannot stay
// silent. docs/mqtt.md publishes the results, one row per subtest; where
// nats-server differs from the specification, the subtest asserts what it
// does and the table says so.
//
// Devices are confined to their own topics (README, "Devices"), so no one
// client may both publish and read a topic. Each row plays the engine (its
// MQTT user, allowed every topic of the devices' account) on one side and a
// device on the other: the engine publishes on a device's command topics
// (control/manager/<id>/...), as starts go, or reads its own topics
// (control/proplet/<id>/...), as results come.
func TestBroker_Conformance(t *testing.T) {
	skipShort(t)
	r := &brokerRig{m: newMosquitto(t), topics: wire.Topics{Tenant: tenant, Channel: channel}}
	r.a = startApp(t)
	r.m.host, r.m.port = hostPort(t, r.a.MQTTURL())
	r.m.engineUser, r.m.enginePass = r.a.EngineMQTT()
	for _, c := range brokerCases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.run(r, t)
		})
	}
}

// brokerCases are the rows of docs/mqtt.md's table, by subtest name.
var brokerCases = []struct {
	name string
	run  func(r *brokerRig, t *testing.T)
}{
	{"QoS 0 delivered at 0", func(r *brokerRig, t *testing.T) { r.qos(t, "qos0", 0, 2, 0) }},
	{"QoS 1 delivered at 1", func(r *brokerRig, t *testing.T) { r.qos(t, "qos1", 1, 2, 1) }},
	{"QoS 2 end to end", func(r *brokerRig, t *testing.T) { r.qos(t, "qos2", 2, 2, 2) }},
	{"QoS 2 retransmitted before PUBREL is delivered once", (*brokerRig).qos2Duplicate},
	{"QoS 2 to a QoS 1 subscription arrives at 1", func(r *brokerRig, t *testing.T) { r.qos(t, "qos21", 2, 1, 1) }},
	{"retained to a later subscriber, cleared by an empty retained publish", (*brokerRig).retained},
	{"last will on abrupt disconnect", (*brokerRig).willAbrupt},
	{"no last will on clean disconnect", (*brokerRig).willClean},
	{"keepalive 1 s: a silent client closed after 1 s, will sent", func(r *brokerRig, t *testing.T) { r.keepalive(t, 1, time.Second) }},
	{"keepalive 2 s: a silent client closed after 3 s, will sent", func(r *brokerRig, t *testing.T) { r.keepalive(t, 2, 3*time.Second) }},
	{"session takeover by the same client id", (*brokerRig).takeover},
	{"persistent session receives QoS 1 sent while offline", (*brokerRig).persistent},
	{"wildcards + and #", (*brokerRig).wildcards},
	{"topic with dots round-trips", (*brokerRig).dots},
	{"topic with a space refused", (*brokerRig).space},
	{"max payload QoS 0 and 1", (*brokerRig).maxPayload},
	{"max payload QoS 2", (*brokerRig).maxPayloadQoS2},
	{"MQTT 5 refused with CONNACK 1", (*brokerRig).mqtt5},
	{"MQTT 3.1 closed without CONNACK", (*brokerRig).mqtt31},
}

// brokerRig is a dev-mode server and the mosquitto clients that talk to it.
type brokerRig struct {
	a      *app.App
	m      *mosquitto
	topics wire.Topics
}

// down is a topic under device's command topics: only the engine
// publishes there, the device may read it.
func (r *brokerRig) down(device, rest string) string {
	return r.topics.Topic(wire.OwnTopic("control/manager", device) + "/" + rest)
}

// up is a topic under device's own topics: the device publishes there,
// only the engine reads it.
func (r *brokerRig) up(device, rest string) string {
	return r.topics.Topic(wire.OwnTopic("control/proplet", device) + "/" + rest)
}

// engine is mosquitto's options to connect as the engine, client id id.
func (r *brokerRig) engine(id string) []string {
	return []string{"-i", id, "-u", r.m.engineUser, "-P", r.m.enginePass}
}

// pub publishes with mosquitto_pub (-d: its packets are in the output)
// and fails the test unless it succeeds.
func (r *brokerRig) pub(t *testing.T, args ...string) string {
	t.Helper()
	out, code := r.try(t, r.m.pubBin, append([]string{"-d"}, args...)...)
	if code != 0 {
		t.Fatalf("mosquitto_pub %s: exit %d\n%s", strings.Join(args, " "), code, out)
	}
	return out
}

// try runs a mosquitto client (bounded in time) and returns its output,
// stdout and stderr, and its exit code.
func (r *brokerRig) try(t *testing.T, bin string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, append(r.m.common(), args...)...)
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return out.String(), 0
	case errors.As(err, &exit) && ctx.Err() == nil:
		return out.String(), exit.ExitCode()
	}
	t.Fatalf("%s %s: %v\n%s", bin, strings.Join(args, " "), err, out.Bytes())
	return "", 0
}

// msgFormat is how watchers print a message: QoS, retain flag, topic,
// payload, tab-separated after a marker debug lines never start with.
const msgFormat = `MSG\tq%q\tr%r\t%t\t%p`

// watcher is a mosquitto_sub that has had its SUBACK.
type watcher struct {
	p   *proc
	out *syncBuffer
}

// watch starts mosquitto_sub with args (which must end it: -C, -E,
// --retained-only; -W 15 bounds it) and returns once the broker has
// acknowledged its subscriptions.
func (r *brokerRig) watch(t *testing.T, args ...string) *watcher {
	t.Helper()
	w := &watcher{out: &syncBuffer{}}
	// mosquitto_sub flushes what it prints of messages, not its debug
	// lines: stdbuf makes its stdout line-buffered, so the SUBACK shows.
	stdbuf, err := exec.LookPath("stdbuf")
	if err != nil {
		t.Fatalf("stdbuf (coreutils): %v", err)
	}
	args = append(append([]string{"-oL", r.m.subBin}, r.m.common()...), append([]string{"-d", "-F", msgFormat, "-W", "15"}, args...)...)
	w.p = startProc(t, "mosquitto_sub", os.DevNull, w.out, os.Environ(), stdbuf, args...)
	natstest.CheckFor(t, 10*time.Second, func() error {
		if !strings.Contains(w.out.String(), "Subscribed (mid") {
			return fmt.Errorf("mosquitto_sub has no SUBACK (exited: %v):\n%s", w.p.exited(), w.out)
		}
		return nil
	})
	return w
}

// mqttMsg is one message a watcher printed.
type mqttMsg struct{ qos, retain, topic, payload string }

func (m mqttMsg) String() string {
	return fmt.Sprintf("%s %s %s %.40q", m.qos, m.retain, m.topic, m.payload)
}

// wait waits for the watcher to end, successfully, and returns the
// messages it printed and its whole output.
func (w *watcher) wait(t *testing.T) ([]mqttMsg, string) {
	t.Helper()
	select {
	case <-w.p.done:
	case <-time.After(20 * time.Second):
		t.Fatalf("mosquitto_sub still running:\n%s", w.out)
	}
	if w.p.err != nil {
		t.Fatalf("mosquitto_sub: %v\n%.4000s", w.p.err, w.out)
	}
	return parseMsgs(w.out.String()), w.out.String()
}

// parseMsgs returns the messages mosquitto_sub printed in msgFormat.
func parseMsgs(out string) []mqttMsg {
	var msgs []mqttMsg
	for line := range strings.SplitSeq(out, "\n") {
		f := strings.SplitN(line, "\t", 5)
		if len(f) == 5 && f[0] == "MSG" {
			msgs = append(msgs, mqttMsg{qos: f[1], retain: f[2], topic: f[3], payload: f[4]})
		}
	}
	return msgs
}

// wantMsgs checks the messages a watcher printed against want.
func wantMsgs(t *testing.T, got []mqttMsg, out string, want ...mqttMsg) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got messages\n%v\nwant\n%v\nmosquitto_sub's output:\n%.4000s", got, want, out)
	}
}

// wantLines checks that out has every line of want.
func wantLines(t *testing.T, who, out string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Fatalf("%s printed no %q:\n%.4000s", who, w, out)
		}
	}
}

// qos publishes at pubQoS as the engine to a device subscribed at subQoS,
// and checks the QoS of the delivery and the handshake on both sides.
func (r *brokerRig) qos(t *testing.T, dev string, pubQoS, subQoS, wantQoS int) {
	w := r.watch(t, "-i", dev, "-q", fmt.Sprint(subQoS), "-t", r.down(dev, "#"), "-C", "1")
	topic := r.down(dev, "x")
	out := r.pub(t, append(r.engine(dev+"-e"), "-q", fmt.Sprint(pubQoS), "-t", topic, "-m", "hello")...)
	got, subOut := w.wait(t)
	wantMsgs(t, got, subOut, mqttMsg{fmt.Sprintf("q%d", wantQoS), "r0", topic, "hello"})
	pubWant := map[int][]string{1: {"received PUBACK"}, 2: {"received PUBREC", "sending PUBREL", "received PUBCOMP"}}
	subWant := map[int][]string{1: {"sending PUBACK"}, 2: {"sending PUBREC", "received PUBREL", "sending PUBCOMP"}}
	wantLines(t, "mosquitto_pub", out, pubWant[pubQoS]...)
	wantLines(t, "mosquitto_sub", subOut, subWant[wantQoS]...)
}

// qos2Duplicate: a device sends a QoS 2 PUBLISH, gets PUBREC, sends it
// again with DUP set (as after a lost connection: MQTT 3.1.1, 4.3.3), then
// PUBREL; the engine's subscriber gets it once. The marker after it goes
// through the same stream: a duplicate would come before it.
func (r *brokerRig) qos2Duplicate(t *testing.T) {
	const dev = "qos2-dup"
	topic := r.up(dev, "x")
	w := r.watch(t, append(r.engine(dev+"-e"), "-q", "2", "-t", r.up(dev, "#"), "-C", "2")...)
	conn := r.rawConnect(t, connectPacket(dev, 60))
	pub := packets.NewControlPacket(packets.Publish).(*packets.PublishPacket)
	pub.Qos, pub.MessageID, pub.TopicName, pub.Payload = 2, 7, topic, []byte("once")
	for dup := range []bool{false, true} {
		pub.Dup = dup == 1
		writePacket(t, conn, pub)
		if rec, ok := readPacket(t, conn).(*packets.PubrecPacket); !ok || rec.MessageID != 7 {
			t.Fatalf("want PUBREC 7, got %v", rec)
		}
	}
	rel := packets.NewControlPacket(packets.Pubrel).(*packets.PubrelPacket)
	rel.MessageID = 7
	writePacket(t, conn, rel)
	if comp, ok := readPacket(t, conn).(*packets.PubcompPacket); !ok || comp.MessageID != 7 {
		t.Fatalf("want PUBCOMP 7, got %v", comp)
	}
	r.pub(t, "-i", dev+"-marker", "-q", "2", "-t", r.up(dev, "end"), "-m", "end")
	got, out := w.wait(t)
	wantMsgs(t, got, out, mqttMsg{"q2", "r0", topic, "once"}, mqttMsg{"q2", "r0", r.up(dev, "end"), "end"})
}

func writePacket(t *testing.T, conn net.Conn, p packets.ControlPacket) {
	t.Helper()
	if err := p.Write(conn); err != nil {
		t.Fatal(err)
	}
}

func readPacket(t *testing.T, conn net.Conn) packets.ControlPacket {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	p, err := packets.ReadPacket(conn)
	if err != nil {
		t.Fatalf("read a packet: %v", err)
	}
	return p
}

// retained: a retained message reaches a subscriber that came after it,
// flagged retained; an empty retained publish clears it, so a subscriber
// after that gets no retained message (--retained-only ends at the first
// message that is not retained: a marker published after its SUBACK).
func (r *brokerRig) retained(t *testing.T) {
	const dev = "ret"
	topic := r.down(dev, "status")
	r.pub(t, append(r.engine("ret-e"), "-q", "1", "-r", "-t", topic, "-m", "kept")...)
	got, out := r.watch(t, "-i", dev, "-q", "1", "-t", r.down(dev, "#"), "-C", "1").wait(t)
	wantMsgs(t, got, out, mqttMsg{"q1", "r1", topic, "kept"})

	r.pub(t, append(r.engine("ret-e"), "-q", "1", "-r", "-t", topic, "-n")...)
	w := r.watch(t, "-i", dev, "-q", "1", "-t", r.down(dev, "#"), "--retained-only")
	r.pub(t, append(r.engine("ret-e"), "-q", "1", "-t", r.down(dev, "marker"), "-m", "marker")...)
	got, out = w.wait(t)
	wantMsgs(t, got, out)
	wantLines(t, "mosquitto_sub", out, "marker'") // it saw the marker, and ended there
}

// willAbrupt: a client killed with SIGKILL (its TCP connection closed
// without DISCONNECT) has its will published.
func (r *brokerRig) willAbrupt(t *testing.T) {
	const dev = "will-kill"
	topic := r.up(dev, "will")
	w := r.watch(t, append(r.engine("will-kill-e"), "-t", topic, "-C", "1")...)
	holder := r.m.holdConnection(t, dev, "--will-topic", topic, "--will-payload", "gone", "--will-qos", "1")
	holder.kill9()
	got, out := w.wait(t)
	wantMsgs(t, got, out, mqttMsg{"q0", "r0", topic, "gone"})
}

// willClean: mosquitto_pub with a will publishes and disconnects with
// DISCONNECT; a second client publishes after it has ended. The watcher
// sees both messages and no will between them (nats-server discards the
// will on DISCONNECT before it closes the connection; a will sent would
// come before the second client's message).
func (r *brokerRig) willClean(t *testing.T) {
	const dev = "will-clean"
	topic := r.up(dev, "will")
	w := r.watch(t, append(r.engine("will-clean-e"), "-t", topic, "-C", "2")...)
	out := r.pub(t, "-i", dev, "-q", "1", "-t", topic, "-m", "first", "--will-topic", topic, "--will-payload", "gone")
	wantLines(t, "mosquitto_pub", out, "sending DISCONNECT")
	r.pub(t, "-i", dev+"-2", "-q", "1", "-t", topic, "-m", "second")
	got, subOut := w.wait(t)
	wantMsgs(t, got, subOut, mqttMsg{"q0", "r0", topic, "first"}, mqttMsg{"q0", "r0", topic, "second"})
}

// keepalive: a client that sends CONNECT with a keepalive of secs and
// then nothing (mosquitto clients always ping, so it is written by hand)
// is disconnected, and its will is sent. MQTT 3.1.1 (3.1.2.10) says after
// 1.5 keepalives; nats-server truncates 1.5 × keepalive to whole seconds
// (server/mqtt.go: time.Duration(float64(ka)*1.5) * time.Second), so a
// keepalive of 1 s is closed after 1 s, of 2 s after 3 s.
func (r *brokerRig) keepalive(t *testing.T, secs uint16, want time.Duration) {
	dev := fmt.Sprintf("silent-%d", secs)
	topic := r.up(dev, "will")
	w := r.watch(t, append(r.engine(dev+"-e"), "-t", topic, "-C", "1")...)
	cp := connectPacket(dev, secs)
	cp.WillFlag, cp.WillTopic, cp.WillMessage = true, topic, []byte("timed out")
	conn := r.rawConnect(t, cp)
	connacked := time.Now()
	closed := readUntilClosed(t, conn, 5*time.Second)
	d := closed.Sub(connacked)
	t.Logf("keepalive %d s: closed %s after CONNACK (MQTT 3.1.1: %s)", secs, d.Round(time.Millisecond), time.Duration(secs)*1500*time.Millisecond)
	// The deadline starts when the server has read CONNECT, a little
	// before the CONNACK is read here; 500 ms to schedule on a busy box.
	if d < want-100*time.Millisecond || d > want+500*time.Millisecond {
		t.Fatalf("closed %s after CONNACK; want %s", d, want)
	}
	got, out := w.wait(t)
	wantMsgs(t, got, out, mqttMsg{"q0", "r0", topic, "timed out"})
}

// takeover: a second connection with the client id of a connected
// mosquitto_sub disconnects it (MQTT 3.1.1, 3.1.4-2). mosquitto_sub
// reconnects when its connection is lost: its second CONNECT is the sign.
func (r *brokerRig) takeover(t *testing.T) {
	const dev = "taken"
	first := r.watch(t, "-i", dev, "-t", r.down(dev, "#"), "-C", "1")
	out := r.pub(t, "-i", dev, "-q", "1", "-t", r.up(dev, "x"), "-m", "mine now")
	wantLines(t, "mosquitto_pub", out, "received CONNACK (0)", "received PUBACK")
	natstest.CheckFor(t, 10*time.Second, func() error {
		out := first.out.String()
		if c, s := strings.Count(out, "sending CONNECT"), strings.Count(out, "Subscribed (mid"); c < 2 || s < 2 {
			return fmt.Errorf("the first client connected %d times and subscribed %d; want 2 (disconnected, then back):\n%s", c, s, out)
		}
		return nil
	})
	// Back, it is subscribed again: it gets a message and ends.
	r.pub(t, append(r.engine("taken-e"), "-q", "1", "-t", r.down(dev, "x"), "-m", "back")...)
	got, subOut := first.wait(t)
	wantMsgs(t, got, subOut, mqttMsg{"q0", "r0", r.down(dev, "x"), "back"})
}

// persistent: a client subscribes at QoS 1 with a persistent session and
// leaves; QoS 1 messages published while it is away are delivered, in
// order, when it comes back with the same client id.
func (r *brokerRig) persistent(t *testing.T) {
	const dev = "persistent"
	filter := r.down(dev, "#")
	r.m.sub(t, "-c", "-i", dev, "-q", "1", "-t", filter, "-E")
	var want []mqttMsg
	for _, p := range []string{"one", "two", "three"} {
		topic := r.down(dev, p)
		r.pub(t, append(r.engine("persistent-e"), "-q", "1", "-t", topic, "-m", p)...)
		want = append(want, mqttMsg{"q1", "r0", topic, p})
	}
	// Not a watcher: the resumed session's messages may come before the
	// SUBACK, and -C 3 end it there.
	out := string(r.m.sub(t, "-c", "-i", dev, "-q", "1", "-t", filter, "-C", "3", "-W", "15", "-F", msgFormat))
	wantMsgs(t, parseMsgs(out), out, want...)
}

// wildcards: + matches one level, # any number including none (its
// parent level). The engine publishes at QoS 1, so each publish has
// reached the subscriber's queue before the next.
func (r *brokerRig) wildcards(t *testing.T) {
	const dev = "wild"
	w := r.watch(t, "-i", dev, "-t", r.down(dev, "+/x"), "-t", r.down(dev, "y/#"), "-C", "4")
	var want []mqttMsg
	for _, c := range []struct {
		rest  string
		match bool
	}{{"a/x", true}, {"a/b/x", false}, {"y", true}, {"y/z/w", true}, {"z/w", false}, {"x", false}, {"end/x", true}} {
		topic := r.down(dev, c.rest)
		r.pub(t, append(r.engine("wild-e"), "-q", "1", "-t", topic, "-m", c.rest)...)
		if c.match {
			want = append(want, mqttMsg{"q0", "r0", topic, c.rest})
		}
	}
	got, out := w.wait(t)
	wantMsgs(t, got, out, want...)
}

// dots: nats-server maps the MQTT level separator / to NATS's . and a .
// in a topic to //; a topic with dots round-trips, and does not meet the
// topic with / where it has dots.
func (r *brokerRig) dots(t *testing.T) {
	const dev = "dots"
	dotted := r.down(dev, "v1.2/a.b")
	w := r.watch(t, "-i", dev, "-t", dotted, "-C", "1")
	r.pub(t, append(r.engine("dots-e"), "-q", "1", "-t", r.down(dev, "v1/2/a/b"), "-m", "slashes")...)
	r.pub(t, append(r.engine("dots-e"), "-q", "1", "-t", dotted, "-m", "dots")...)
	got, out := w.wait(t)
	wantMsgs(t, got, out, mqttMsg{"q0", "r0", dotted, "dots"})
}

// space: MQTT 3.1.1 allows spaces in topics (4.7.3); nats-server refuses
// them: a subscription gets SUBACK failure (0x80), a publish closes the
// connection.
func (r *brokerRig) space(t *testing.T) {
	const dev = "space"
	out := r.m.sub(t, "-d", "-i", dev, "-t", r.down(dev, "ok"), "-t", r.down(dev, "with space"), "-E")
	wantLines(t, "mosquitto_sub", string(out), "Subscribed (mid: 1): 0, 128")
	pubOut, code := r.try(t, r.m.pubBin, append(r.engine("space-e"), "-d", "-q", "1", "-t", r.down(dev, "with space"), "-m", "x")...)
	if code == 0 || strings.Contains(pubOut, "received PUBACK") {
		t.Fatalf("a publish on a topic with a space: exit %d\n%s", code, pubOut)
	}
	wantLines(t, "mosquitto_pub", pubOut, "The connection was lost")
	t.Logf("mosquitto_pub on a topic with a space: exit %d\n%s", code, pubOut)
}

// mqttPubOverhead is what nats-server adds to an MQTT message of QoS 0 or 1
// before checking it against the server's max payload: a header
// "NATS/1.0\r\nNmqtt-Pub:<qos>\r\n\r\n" (server/mqtt.go,
// mqttComputeNatsMsgSize).
const mqttPubOverhead = 25

// mqttPubOverheadQoS2 is the QoS 2 overhead without the subject: a flags
// byte and "Nmqtt-Subject:<subject>\r\n" more.
const mqttPubOverheadQoS2 = 42

// maxPayload: a device publishes a message of the listener's limit
// (natsserver.DefaultMaxPayload less mqttPubOverhead) at QoS 1, which the
// engine receives whole; one byte more closes the connection, at QoS 1
// (mosquitto_pub: "The connection was lost") and at QoS 0 (mosquitto_pub
// cannot tell), and is delivered to nobody.
func (r *brokerRig) maxPayload(t *testing.T) {
	const dev = "big"
	limit := natsserver.DefaultMaxPayload - mqttPubOverhead
	w := r.watch(t, append(r.engine("big-e"), "-t", r.up(dev, "#"), "-C", "2")...)
	r.pub(t, "-i", dev, "-q", "1", "-t", r.up(dev, "at-limit"), "-f", payloadFile(t, limit))
	over := payloadFile(t, limit+1)
	out, code := r.try(t, r.m.pubBin, "-d", "-i", dev, "-q", "1", "-t", r.up(dev, "over-1"), "-f", over)
	if code == 0 || !strings.Contains(out, "The connection was lost") || strings.Contains(out, "received PUBACK") {
		t.Fatalf("QoS 1, %d bytes: exit %d\n%s", limit+1, code, out)
	}
	r.pub(t, "-i", dev, "-q", "0", "-t", r.up(dev, "over-0"), "-f", over) // QoS 0: the client cannot know
	r.pub(t, "-i", dev, "-q", "1", "-t", r.up(dev, "end"), "-m", "end")
	got, subOut := w.wait(t)
	wantMsgs(t, got, subOut, mqttMsg{"q0", "r0", r.up(dev, "at-limit"), strings.Repeat("a", limit)}, mqttMsg{"q0", "r0", r.up(dev, "end"), "end"})
}

// maxPayloadQoS2: at QoS 2 the limit is lower by the subject's length and
// 17 bytes (mqttPubOverheadQoS2).
func (r *brokerRig) maxPayloadQoS2(t *testing.T) {
	const dev = "big2"
	topic := r.up(dev, "x")
	limit := natsserver.DefaultMaxPayload - mqttPubOverheadQoS2 - len(topic)
	w := r.watch(t, append(r.engine("big2-e"), "-t", r.up(dev, "#"), "-C", "2")...)
	r.pub(t, "-i", dev, "-q", "2", "-t", topic, "-f", payloadFile(t, limit))
	out, code := r.try(t, r.m.pubBin, "-d", "-i", dev, "-q", "2", "-t", topic, "-f", payloadFile(t, limit+1))
	if code == 0 || !strings.Contains(out, "The connection was lost") || strings.Contains(out, "received PUBREC") {
		t.Fatalf("QoS 2, %d bytes: exit %d\n%s", limit+1, code, out)
	}
	r.pub(t, "-i", dev, "-q", "1", "-t", r.up(dev, "end"), "-m", "end")
	got, subOut := w.wait(t)
	wantMsgs(t, got, subOut, mqttMsg{"q0", "r0", topic, strings.Repeat("a", limit)}, mqttMsg{"q0", "r0", r.up(dev, "end"), "end"})
}

// payloadFile writes n bytes of "a" to a temp file and returns its path.
func payloadFile(t *testing.T, n int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), fmt.Sprintf("payload-%d", n))
	if err := os.WriteFile(path, bytes.Repeat([]byte("a"), n), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestBroker_Refusals: what the listener of a server with --auth on
// refuses, one row each (the bad-input regression rows of the device
// protocol): the client's exit code and what it prints, then the event
// log unchanged and the device still able to connect.
func TestBroker_Refusals(t *testing.T) {
	skipShort(t)
	m := newMosquitto(t)
	a, err := app.Start(context.Background(), app.Config{
		DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", NATSPort: -1, MQTTPort: -1,
		Tenant: tenant, Channel: channel, Replicas: 1, MaxModule: 100 << 20,
		Liveness: 30 * time.Second, LogLevel: "info", Auth: true,
	}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	m.host, m.port = hostPort(t, a.MQTTURL())
	r := &brokerRig{a: a, m: m, topics: wire.Topics{Tenant: tenant, Channel: channel}}
	const dev = "gw-7"
	_, key, err := a.Service().ProvisionDevice(context.Background(), dev, false)
	if err != nil {
		t.Fatal(err)
	}
	rig := &attackRig{a: a}
	rig.settled(t)
	before := rig.eventLog(t)

	own := []string{"-i", dev, "-u", dev, "-P", key}
	with := func(creds []string, more ...string) []string { return append(append([]string{}, creds...), more...) }
	alive := r.up(dev, "alive")
	limit := natsserver.DefaultMaxPayload - mqttPubOverhead
	limit2 := natsserver.DefaultMaxPayload - mqttPubOverheadQoS2 - len(alive)
	const refused, lost = "Connection Refused: not authorised.", "Error: The connection was lost."
	for _, c := range []struct {
		name     string
		sub      bool // mosquitto_sub, else mosquitto_pub
		args     []string
		wantExit int
		wantOut  string
	}{
		{"wrong password", false, with([]string{"-i", dev, "-u", dev, "-P", "jpd_wrong"}, "-t", alive, "-m", "{}"), 5, refused},
		{"no password", false, with([]string{"-i", dev, "-u", dev}, "-t", alive, "-m", "{}"), 5, refused},
		{"no user name", false, with([]string{"-i", dev}, "-t", alive, "-m", "{}"), 5, refused},
		{"unknown device with a real key", false, with([]string{"-i", "nobody", "-u", "nobody", "-P", key}, "-t", alive, "-m", "{}"), 5, refused},
		{"another client id with the device's key", false, with([]string{"-i", "other", "-u", dev, "-P", key}, "-t", alive, "-m", "{}"), 5, refused},
		{"MQTT 5", false, with(own, "-V", "mqttv5", "-t", alive, "-m", "{}"), 132, "Connection error: Unsupported Protocol Version."},
		{"MQTT 3.1", false, with(own, "-V", "mqttv31", "-t", alive, "-m", "{}"), 7, lost},
		{"publish on a topic with a space", false, with(own, "-q", "1", "-t", r.up(dev, "with space"), "-m", "{}"), 7, lost},
		{"subscribe to a topic with a space", true, with(own, "-q", "1", "-t", r.down(dev, "with space"), "-E"), 0, "All subscription requests were denied."},
		{"payload over the limit at QoS 1", false, with(own, "-q", "1", "-t", alive, "-f", payloadFile(t, limit+1)), 7, lost},
		{"payload over the limit at QoS 2", false, with(own, "-q", "2", "-t", alive, "-f", payloadFile(t, limit2+1)), 7, lost},
	} {
		t.Run(c.name, func(t *testing.T) {
			bin := m.pubBin
			if c.sub {
				bin = m.subBin
			}
			out, code := r.try(t, bin, c.args...)
			if code != c.wantExit || !strings.Contains(out, c.wantOut) {
				t.Fatalf("exit %d, want %d with %q:\n%s", code, c.wantExit, c.wantOut, out)
			}
		})
	}
	rig.settled(t)
	if rig.eventLog(t) != before {
		t.Fatal("the event log changed")
	}
	out := string(m.sub(t, with(own, "-d", "-q", "1", "-t", r.down(dev, "start"), "-E")...))
	wantLines(t, "mosquitto_sub", out, "received CONNACK (0)", "Subscribed (mid: 1): 1")
}

// mqtt5: a CONNECT of protocol level 5 gets a CONNACK in MQTT 3.1.1's
// format with return code 1 (unacceptable protocol version), then the
// connection is closed; mosquitto in v5 mode reads it as reason code 132
// (0x84, unsupported protocol version) and says so.
func (r *brokerRig) mqtt5(t *testing.T) {
	out, code := r.try(t, r.m.pubBin, "-V", "mqttv5", "-d", "-i", "v5", "-t", r.up("v5", "x"), "-m", "x")
	if code != 132 {
		t.Fatalf("mosquitto_pub -V mqttv5: exit %d, want 132\n%s", code, out)
	}
	wantLines(t, "mosquitto_pub", out, "received CONNACK (132)", "Connection error: Unsupported Protocol Version.")
	t.Logf("mosquitto_pub -V mqttv5: exit %d\n%s", code, out)

	// The bytes on the wire: an MQTT 5 CONNECT (level 5, clean start,
	// keepalive 60, no properties, client id "v5").
	connect := []byte{0x10, 15, 0, 4, 'M', 'Q', 'T', 'T', 5, 0x02, 0, 60, 0, 0, 2, 'v', '5'}
	conn := r.dial(t)
	if _, err := conn.Write(connect); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, err := io.ReadAll(conn)
	if err != nil || !bytes.Equal(got, []byte{0x20, 2, 0, 1}) {
		t.Fatalf("read %x (%v); want CONNACK 20 02 00 01, then the connection closed", got, err)
	}
}

// mqtt31: MQTT 3.1 (protocol name MQIsdp, level 3) is closed without a
// CONNACK (MQTT 3.1.1, 3.1.2.1: a server MAY close on a protocol name it
// does not know).
func (r *brokerRig) mqtt31(t *testing.T) {
	out, code := r.try(t, r.m.pubBin, "-V", "mqttv31", "-d", "-i", "v31", "-t", r.up("v31", "x"), "-m", "x")
	if code == 0 || strings.Contains(out, "received CONNACK") {
		t.Fatalf("mosquitto_pub -V mqttv31: exit %d\n%s", code, out)
	}
	t.Logf("mosquitto_pub -V mqttv31: exit %d\n%s", code, out)
	wantLines(t, "mosquitto_pub", out, "The connection was lost")
}

// dial opens a TCP connection to the listener, closed at cleanup.
func (r *brokerRig) dial(t *testing.T) net.Conn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", net.JoinHostPort(r.m.host, r.m.port), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// connectPacket is an MQTT 3.1.1 CONNECT with a clean session.
func connectPacket(id string, keepalive uint16) *packets.ConnectPacket {
	cp := packets.NewControlPacket(packets.Connect).(*packets.ConnectPacket)
	cp.ProtocolName, cp.ProtocolVersion = "MQTT", 4
	cp.CleanSession, cp.ClientIdentifier, cp.Keepalive = true, id, keepalive
	return cp
}

// rawConnect sends cp on a new connection and waits for CONNACK 0.
func (r *brokerRig) rawConnect(t *testing.T, cp *packets.ConnectPacket) net.Conn {
	t.Helper()
	conn := r.dial(t)
	if err := cp.Write(conn); err != nil {
		t.Fatal(err)
	}
	p := readPacket(t, conn)
	if ack, ok := p.(*packets.ConnackPacket); !ok || ack.ReturnCode != 0 {
		t.Fatalf("want CONNACK 0, got %v", p)
	}
	return conn
}

// readUntilClosed reads conn until the server closes it and returns when;
// it fails the test if a packet comes or within fails.
func readUntilClosed(t *testing.T, conn net.Conn, within time.Duration) time.Time {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(within))
	var b [1]byte
	n, err := conn.Read(b[:])
	closed := time.Now()
	if n != 0 || !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !isReset(err) {
		t.Fatalf("read %d bytes, %v; want the connection closed within %s", n, err, within)
	}
	return closed
}

func isReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && !op.Timeout()
}

package wire

import (
	"errors"
	"fmt"
	"strings"
)

// Topic suffixes after "m/{tenant}/c/{channel}/".
const (
	SuffixStart         = "control/manager/start"
	SuffixStop          = "control/manager/stop"
	SuffixResultAck     = "control/manager/result_ack" // jetprop's, on a device's own topics only
	SuffixInvoke        = "control/manager/invoke"
	SuffixCreate        = "control/proplet/create"
	SuffixAlive         = "control/proplet/alive"
	SuffixResults       = "control/proplet/results"
	SuffixAccepted      = "control/proplet/accepted" // jetprop's, on a device's own topics only
	SuffixInvokeResults = "control/proplet/invoke_results"
	SuffixTaskMetrics   = "control/proplet/task_metrics"
	SuffixMetrics       = "control/proplet/metrics"
	SuffixModuleRequest = "registry/proplet"
	SuffixChunk         = "registry/server"
)

// ErrBadTopic reports a topic outside the Propeller namespace.
var ErrBadTopic = errors.New("wire: not a propeller topic")

// Topics builds the topics of one deployment (tenant and channel).
type Topics struct {
	Tenant  string
	Channel string
}

// Validate reports ids that cannot appear in a topic level.
func (t Topics) Validate() error {
	for _, f := range [...]struct{ name, v string }{{"tenant", t.Tenant}, {"channel", t.Channel}} {
		name, v := f.name, f.v
		if v == "" {
			return fmt.Errorf("wire: %s id is empty", name)
		}
		if strings.ContainsAny(v, "/+#. \t\r\n") {
			return fmt.Errorf("wire: %s id %q contains a character not allowed in a topic level", name, v)
		}
	}
	return nil
}

// Prefix is "m/{tenant}/c/{channel}".
func (t Topics) Prefix() string { return "m/" + t.Tenant + "/c/" + t.Channel }

// Topic returns the full topic for a suffix such as SuffixStart.
func (t Topics) Topic(suffix string) string { return t.Prefix() + "/" + suffix }

// Suffix returns the part of topic after this deployment's prefix.
func (t Topics) Suffix(topic string) (string, error) {
	rest, ok := strings.CutPrefix(topic, t.Prefix()+"/")
	if !ok {
		return "", fmt.Errorf("%w: %q", ErrBadTopic, topic)
	}
	return rest, nil
}

// ParseTopic splits any "m/{tenant}/c/{channel}/{suffix}" topic.
func ParseTopic(topic string) (Topics, string, error) {
	parts := strings.SplitN(topic, "/", 5)
	if len(parts) != 5 || parts[0] != "m" || parts[2] != "c" || parts[1] == "" || parts[3] == "" {
		return Topics{}, "", fmt.Errorf("%w: %q", ErrBadTopic, topic)
	}
	return Topics{Tenant: parts[1], Channel: parts[3]}, parts[4], nil
}

// IsHTTPURL reports whether an image_url is an http(s) URL, which a proplet
// fetches itself, rather than a name to ask for on the registry topics.
func IsHTTPURL(ref string) bool {
	lower := strings.ToLower(ref)
	return strings.HasPrefix(lower, "http://") || strings.HasPrefix(lower, "https://")
}

// Subject maps an MQTT topic to the NATS subject nats-server uses for it:
// "/" becomes ".", "+" becomes "*", "#" becomes ">", and a "." inside a
// topic level becomes "//".
func Subject(topic string) string {
	var b strings.Builder
	levels := strings.Split(topic, "/")
	for i, l := range levels {
		if i > 0 {
			b.WriteByte('.')
		}
		switch l {
		case "+":
			b.WriteByte('*')
		case "#":
			b.WriteByte('>')
		default:
			b.WriteString(strings.ReplaceAll(l, ".", "//"))
		}
	}
	return b.String()
}

// Topic maps a NATS subject published by the MQTT listener back to its topic.
func Topic(subject string) string {
	const dot = "\x00"
	s := strings.ReplaceAll(subject, "//", dot)
	s = strings.ReplaceAll(s, ".", "/")
	return strings.ReplaceAll(s, dot, ".")
}

// A device's own topics put its id after the direction's level:
// control/proplet/<id>/results (device to engine), control/manager/<id>/start
// (engine to device), registry/proplet/<id> and registry/server/<id>. The
// subject of a message on them proves who sent it, because only that
// device may publish there; Propeller's proplets use the shared topics
// (the suffixes above) instead.
var ownLevels = [...]string{"control/proplet", "control/manager", "registry/proplet", "registry/server"}

// OwnTopic returns the device's own variant of a shared suffix:
// OwnTopic(SuffixResults, "p1") is "control/proplet/p1/results".
func OwnTopic(suffix, device string) string {
	for _, l := range ownLevels {
		if rest, ok := strings.CutPrefix(suffix, l); ok {
			return l + "/" + device + rest
		}
	}
	return suffix
}

// SplitOwn undoes OwnTopic: the shared suffix and the device a suffix
// names ("" for a shared suffix, or one of no device).
func SplitOwn(suffix string) (shared, device string) {
	for _, l := range ownLevels {
		rest, ok := strings.CutPrefix(suffix, l+"/")
		if !ok {
			continue
		}
		id, kind, more := strings.Cut(rest, "/")
		switch {
		case id == "":
		case !more && (l == SuffixModuleRequest || l == SuffixChunk):
			return l, id
		case more && isKind(l+"/"+kind):
			return l + "/" + kind, id
		}
	}
	return suffix, ""
}

func isKind(suffix string) bool {
	switch suffix {
	case SuffixStart, SuffixStop, SuffixInvoke, SuffixCreate, SuffixAlive, SuffixResults,
		SuffixInvokeResults, SuffixTaskMetrics, SuffixMetrics, SuffixAccepted, SuffixResultAck:
		return true
	}
	return false
}

// deviceKinds are the shared suffixes devices publish on.
var deviceKinds = []string{SuffixCreate, SuffixAlive, SuffixResults, SuffixInvokeResults, SuffixTaskMetrics, SuffixMetrics, SuffixModuleRequest, SuffixAccepted}

// managerKinds are the shared suffixes devices listen on.
var managerKinds = []string{SuffixStart, SuffixStop, SuffixInvoke, SuffixChunk}

// DeviceAccess returns the NATS subjects a device may publish and
// subscribe to: its own topics, and Propeller's shared ones too when it is
// a legacy device (a Propeller proplet, which knows no others).
func (t Topics) DeviceAccess(device string, legacy bool) (pub, sub []string) {
	for _, k := range deviceKinds {
		pub = append(pub, Subject(t.Topic(OwnTopic(k, device))))
	}
	for _, k := range managerKinds {
		sub = append(sub, Subject(t.Topic(OwnTopic(k, device))))
	}
	own := Subject(t.Topic(OwnTopic("control/manager", device)))
	sub = append(sub, own, own+".>") // control/manager/<id>/# subscribes to both
	if legacy {
		for _, k := range deviceKinds {
			if k != SuffixAccepted { // taken on own topics only, where the topic proves the sender
				pub = append(pub, Subject(t.Topic(k)))
			}
		}
		for _, k := range managerKinds {
			sub = append(sub, Subject(t.Topic(k)))
		}
	}
	return pub, sub
}

// AnyDeviceAccess returns the subjects any device may use when devices are
// not identified (dev mode): every device's topics, shared and own, in
// the direction a device uses them. A device may not publish what the
// engine sends (starts, stops, chunks) nor read what devices send.
func (t Topics) AnyDeviceAccess() (pub, sub []string) {
	for _, l := range []string{"control/proplet", "registry/proplet"} {
		s := Subject(t.Topic(l))
		pub = append(pub, s, s+".>")
	}
	for _, l := range []string{"control/manager", "registry/server"} {
		s := Subject(t.Topic(l))
		sub = append(sub, s, s+".>")
	}
	return pub, sub
}

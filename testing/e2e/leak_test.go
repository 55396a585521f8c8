package e2e

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestKill9_NoMQTTSessionLeak kills the server several times: what it keeps
// of its own MQTT connections must not grow with the number of crashes.
func TestKill9_NoMQTTSessionLeak(t *testing.T) {
	skipShort(t)
	p := newPorts(t)
	s := startServer(t, t.TempDir(), p, 0)
	const kills = 3
	for range kills {
		s.kill9()
		s.restart(0)
	}
	ids := engineSessions(t, s)
	if len(ids) > 1 {
		t.Fatalf("after %d kills, $MQTT_sess holds %d sessions of the engine's publisher, want at most 1: %v", kills, len(ids), ids)
	}
}

// engineSessions lists the client ids of the MQTT sessions nats-server
// keeps for jetprop's engine (in stream $MQTT_sess, in the devices'
// account, whose JetStream API the engine's reaches under a prefix).
func engineSessions(t *testing.T, s *server) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st := devicesStream(t, ctx, s, "$MQTT_sess")
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && seq > 0; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if err != nil {
			continue // deleted
		}
		var sess struct {
			ID string `json:"id"`
		}
		if json.Unmarshal(m.Data, &sess) == nil && strings.HasPrefix(sess.ID, "jetprop-engine-") {
			ids = append(ids, sess.ID)
		}
	}
	return ids
}

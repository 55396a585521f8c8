package journal_test

import (
	"fmt"
	"strings"
	"testing"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/jetprop/jetprop/workers/journal"
)

// BenchmarkStore_PutDel is one QoS 1 message's life in the session store
// (Put when sent, Del on PUBACK), for the journal and for paho's stores.
//
//	go test -run '^$' -bench Store_PutDel ./workers/journal/
func BenchmarkStore_PutDel(b *testing.B) {
	stores := []struct {
		name string
		open func(b *testing.B) mqtt.Store
	}{
		{name: "journal", open: func(b *testing.B) mqtt.Store { return open(b, b.TempDir()).Store() }},
		{name: "journal-sync", open: func(b *testing.B) mqtt.Store { return open(b, b.TempDir(), journal.WithSync(true)).Store() }},
		{name: "paho-file", open: func(b *testing.B) mqtt.Store { return mqtt.NewFileStore(b.TempDir()) }},
		{name: "paho-memory", open: func(b *testing.B) mqtt.Store { return mqtt.NewMemoryStore() }},
	}
	result := strings.Repeat("r", 200) // about a result message
	for _, st := range stores {
		b.Run(st.name, func(b *testing.B) {
			s := st.open(b)
			s.Open()
			defer s.Close()
			b.ReportAllocs()
			var id uint16
			for b.Loop() {
				id = id%65535 + 1
				key := fmt.Sprintf("o.%d", id)
				s.Put(key, publish(id, 1, result))
				s.Del(key)
			}
		})
	}
}

package journal

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/eclipse/paho.mqtt.golang/packets"
)

// paho's key prefixes: "o.<message id>" outbound, "i.<message id>" inbound.
const (
	outboundPrefix = "o."
	inboundPrefix  = "i."
)

// Store is the journal seen as paho's session store (mqtt.Store): outbound
// packets are journaled, inbound ones kept in memory (see the package
// documentation). Get it from Journal.Store.
//
// paho opens the store when it connects and closes it when it disconnects
// or fails to connect, then opens it again to reconnect; the journal file
// stays open throughout, owned by whoever opened the Journal, so Open and
// Close do nothing.
type Store struct {
	j *Journal

	mu  sync.Mutex
	mem map[string]memEntry // inbound packets
}

type memEntry struct {
	seq uint64
	pkt packets.ControlPacket
}

// Store returns the journal's paho session store.
func (j *Journal) Store() *Store { return j.store }

// Open does nothing: the journal is already open.
func (s *Store) Open() {}

// Close does nothing: the journal stays open for the next connection.
func (s *Store) Close() {}

// Put stores a packet under key. Outbound packets are written to the
// journal; a failure is counted and passed to WithOnError.
func (s *Store) Put(key string, m packets.ControlPacket) {
	if strings.HasPrefix(key, inboundPrefix) {
		s.mu.Lock()
		s.mem[key] = memEntry{seq: s.j.nextMemSeq(), pkt: m}
		s.mu.Unlock()
		return
	}
	if !isPahoKey(key) {
		s.j.countError(fmt.Errorf("%w: %q is not a paho key", ErrInvalid, key))
		return
	}
	var b bytes.Buffer
	if err := m.Write(&b); err != nil {
		s.j.countError(fmt.Errorf("journal: encode %s: %w", key, err))
		return
	}
	if err := s.j.put(key, b.Bytes()); err != nil {
		s.j.reportError(fmt.Errorf("journal: put %s: %w", key, err))
	}
}

// Get returns the packet stored under key, or nil.
func (s *Store) Get(key string) packets.ControlPacket {
	if strings.HasPrefix(key, inboundPrefix) {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.mem[key].pkt
	}
	if !isPahoKey(key) {
		return nil
	}
	b, ok := s.j.get(key)
	if !ok {
		return nil
	}
	pkt, err := packets.ReadPacket(bytes.NewReader(b))
	if err != nil { // checksummed, so only a packet paho itself could not read back
		s.j.reportError(fmt.Errorf("journal: decode %s: %w", key, err))
		return nil
	}
	return pkt
}

// All returns the keys of every stored packet, oldest first, so that paho
// resends messages in the order they were first sent.
func (s *Store) All() []string {
	out := s.j.entries(outboundPrefix)
	s.mu.Lock()
	for k, e := range s.mem {
		out = append(out, slotEntry{key: k, slot: &slot{seq: e.seq}})
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b slotEntry) int { return compareSeq(a.seq, b.seq) })
	keys := make([]string, len(out))
	for i, e := range out {
		keys[i] = e.key
	}
	return keys
}

// Del removes the packet stored under key, if any.
func (s *Store) Del(key string) {
	if strings.HasPrefix(key, inboundPrefix) {
		s.mu.Lock()
		delete(s.mem, key)
		s.mu.Unlock()
		return
	}
	if !isPahoKey(key) {
		return
	}
	if err := s.j.del(key); err != nil {
		s.j.reportError(fmt.Errorf("journal: del %s: %w", key, err))
	}
}

// Reset removes every stored packet (paho calls it for a clean session);
// tasks stay.
func (s *Store) Reset() {
	s.mu.Lock()
	clear(s.mem)
	s.mu.Unlock()
	for _, e := range s.j.entries(outboundPrefix) {
		s.Del(e.key)
	}
}

// Enqueue stores a QoS >= 1 PUBLISH under a free message id, for paho to
// send when the session resumes, as it resends any message the broker did
// not acknowledge. Call it before the client's first Connect: paho picks
// ids for new messages from its own table, which learns about stored ones
// only when it resends them.
func (s *Store) Enqueue(topic string, qos byte, payload []byte) error {
	if qos < 1 || qos > 2 {
		return fmt.Errorf("%w: enqueue at QoS %d, want 1 or 2", ErrInvalid, qos)
	}
	id, err := s.j.freeMessageID()
	if err != nil {
		return err
	}
	pub := packets.NewControlPacket(packets.Publish).(*packets.PublishPacket)
	pub.TopicName, pub.Qos, pub.MessageID, pub.Payload = topic, qos, id, payload
	var b bytes.Buffer
	if err := pub.Write(&b); err != nil {
		return fmt.Errorf("journal: encode: %w", err)
	}
	return s.j.put(outboundKey(id), b.Bytes())
}

// isPahoKey: paho's keys are "i.<id>" or "o.<id>"; tasks share the
// journal under other prefixes and are not the Store's.
func isPahoKey(key string) bool {
	return strings.HasPrefix(key, outboundPrefix) || strings.HasPrefix(key, inboundPrefix)
}

func outboundKey(id uint16) string { return outboundPrefix + strconv.Itoa(int(id)) }

// freeMessageID returns the lowest message id no outbound record uses.
func (j *Journal) freeMessageID() (uint16, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	for id := 1; id <= 0xffff; id++ {
		if _, used := j.index[outboundKey(uint16(id))]; !used {
			return uint16(id), nil
		}
	}
	return 0, fmt.Errorf("%w: no free message id", ErrInvalid)
}

// nextMemSeq orders in-memory packets among the journaled ones.
func (j *Journal) nextMemSeq() uint64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.seq++
	return j.seq
}

// countError counts and reports an error that happened before a write.
func (j *Journal) countError(err error) {
	j.mu.Lock()
	j.stats.WriteErrors++
	j.mu.Unlock()
	j.reportError(err)
}

package journal_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/jetprop/jetprop/workers/journal"
)

var _ mqtt.Store = (*journal.Store)(nil)

// open opens a journal in dir, closed when the test ends.
func open(t testing.TB, dir string, opts ...journal.Option) *journal.Journal {
	t.Helper()
	j, err := journal.Open(dir, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	return j
}

func reopen(t testing.TB, j *journal.Journal, dir string, opts ...journal.Option) *journal.Journal {
	t.Helper()
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	return open(t, dir, opts...)
}

func publish(id uint16, qos byte, payload string) *packets.PublishPacket {
	p := packets.NewControlPacket(packets.Publish).(*packets.PublishPacket)
	p.TopicName, p.Qos, p.MessageID, p.Payload = "m/t/c/c/control/proplet/results", qos, id, []byte(payload)
	return p
}

func pubrel(id uint16) *packets.PubrelPacket {
	p := packets.NewControlPacket(packets.Pubrel).(*packets.PubrelPacket)
	p.MessageID = id
	return p
}

// payload returns the payload of a stored PUBLISH, or "" for anything else.
func payload(p packets.ControlPacket) string {
	if pub, ok := p.(*packets.PublishPacket); ok {
		return string(pub.Payload)
	}
	return ""
}

func TestStore_RoundTrip(t *testing.T) {
	s := open(t, t.TempDir()).Store()
	s.Open()
	s.Put("o.1", publish(1, 1, "one"))
	s.Put("o.2", publish(2, 2, "two"))
	s.Put("i.7", publish(7, 1, "inbound"))
	s.Put("o.3", pubrel(3))
	if got := s.All(); !slices.Equal(got, []string{"o.1", "o.2", "i.7", "o.3"}) {
		t.Fatalf("All = %v", got)
	}
	got := s.Get("o.2").(*packets.PublishPacket)
	if got.MessageID != 2 || got.Qos != 2 || string(got.Payload) != "two" || got.TopicName != "m/t/c/c/control/proplet/results" {
		t.Fatalf("Get(o.2) = %v", got)
	}
	if p, ok := s.Get("o.3").(*packets.PubrelPacket); !ok || p.MessageID != 3 {
		t.Fatalf("Get(o.3) = %v", s.Get("o.3"))
	}
	if payload(s.Get("i.7")) != "inbound" {
		t.Fatalf("Get(i.7) = %v", s.Get("i.7"))
	}
	s.Del("o.2")
	s.Del("i.7")
	s.Del("o.99") // absent: nothing happens
	if got := s.All(); !slices.Equal(got, []string{"o.1", "o.3"}) {
		t.Fatalf("All after Del = %v", got)
	}
	if s.Get("o.2") != nil || s.Get("i.7") != nil || s.Get("nope") != nil {
		t.Fatal("deleted packets still there")
	}
	s.Close()
	s.Reset()
	if got := s.All(); len(got) != 0 {
		t.Fatalf("All after Reset = %v", got)
	}
}

// TestJournal_ReopenRestores: outbound packets and tasks survive a reopen,
// in order; inbound packets are not persisted (by design).
func TestJournal_ReopenRestores(t *testing.T) {
	dir := t.TempDir()
	j := open(t, dir)
	s := j.Store()
	for i := range uint16(5) {
		s.Put(fmt.Sprintf("o.%d", 10-i), publish(10-i, 1, fmt.Sprint("msg", i)))
	}
	s.Put("i.1", publish(1, 1, "inbound"))
	s.Del("o.8")
	s.Put("o.9", pubrel(9)) // overwrite: moves to the end
	if err := j.Accepted("task-a", 3, []byte(`{"name":"add"}`)); err != nil {
		t.Fatal(err)
	}
	if err := j.Accepted("task-b", 1, nil); err != nil {
		t.Fatal(err)
	}
	if err := j.Finished("task-b", 1); err != nil {
		t.Fatal(err)
	}

	j = reopen(t, j, dir)
	s = j.Store()
	if got := s.All(); !slices.Equal(got, []string{"o.10", "o.7", "o.6", "o.9"}) {
		t.Fatalf("All after reopen = %v", got)
	}
	if payload(s.Get("o.6")) != "msg4" {
		t.Fatalf("o.6 = %v", s.Get("o.6"))
	}
	want := []journal.Entry{{TaskID: "task-a", Attempt: 3, Start: []byte(`{"name":"add"}`)}}
	if got := j.Interrupted(); !entriesEqual(got, want) {
		t.Fatalf("Interrupted = %+v, want %+v", got, want)
	}
	if done, ok := j.Done("task-b"); !ok || done != 1 {
		t.Fatalf("Done(task-b) = %d, %v", done, ok)
	}
	if st := j.Stats(); st.Records != 6 || st.TornBytes != 0 || st.Corrupt != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func entriesEqual(a, b []journal.Entry) bool {
	return slices.EqualFunc(a, b, func(x, y journal.Entry) bool {
		return x.TaskID == y.TaskID && x.Attempt == y.Attempt && bytes.Equal(x.Start, y.Start)
	})
}

func TestJournal_Tasks(t *testing.T) {
	dir := t.TempDir()
	j := open(t, dir)
	for i, id := range []string{"a", "b", "c"} {
		if err := j.Accepted(id, i, []byte(id)); err != nil {
			t.Fatal(err)
		}
	}
	if got := j.Interrupted(); len(got) != 0 {
		t.Fatalf("tasks of this process reported interrupted: %+v", got)
	}
	j.Finished("b", 1)
	j = reopen(t, j, dir)
	got := j.Interrupted()
	if ids := taskIDs(got); !slices.Equal(ids, []string{"a", "c"}) {
		t.Fatalf("Interrupted = %v", ids)
	}
	// c is accepted again after the restart: clearing the old entry must
	// not clear the new one.
	if err := j.Accepted("c", 5, nil); err != nil {
		t.Fatal(err)
	}
	for _, e := range got {
		if err := j.Clear(e); err != nil {
			t.Fatal(err)
		}
	}
	if got := j.Interrupted(); len(got) != 0 {
		t.Fatalf("Interrupted after Clear = %+v", got)
	}
	j = reopen(t, j, dir)
	if got := j.Interrupted(); len(got) != 1 || got[0].TaskID != "c" || got[0].Attempt != 5 {
		t.Fatalf("Interrupted = %+v, want c attempt 5", got)
	}
	if err := j.Accepted("", 1, nil); !errors.Is(err, journal.ErrInvalid) {
		t.Fatalf("empty task id: %v", err)
	}
}

func taskIDs(es []journal.Entry) []string {
	var ids []string
	for _, e := range es {
		ids = append(ids, e.TaskID)
	}
	return ids
}

// TestJournal_TornTail cuts the file inside its last record, as a crash
// inside write(2) would: the record is dropped, the rest kept, and the
// journal keeps working.
func TestJournal_TornTail(t *testing.T) {
	for _, cut := range []int{1, 7, 8, 9, 20} {
		t.Run(fmt.Sprintf("cut%d", cut), func(t *testing.T) {
			dir := t.TempDir()
			j := open(t, dir)
			j.Store().Put("o.1", publish(1, 1, "kept"))
			j.Close()
			before := fileSize(t, dir)
			j = open(t, dir)
			j.Store().Put("o.2", publish(2, 1, "torn away............"))
			j.Close()
			truncate(t, dir, before+int64(cut))

			j = open(t, dir)
			if st := j.Stats(); st.TornBytes != int64(cut) || st.Corrupt != 0 {
				t.Fatalf("stats %+v, want %d torn bytes", st, cut)
			}
			if got := j.Store().All(); !slices.Equal(got, []string{"o.1"}) {
				t.Fatalf("All = %v", got)
			}
			j.Store().Put("o.3", publish(3, 1, "after"))
			j = reopen(t, j, dir)
			if got := j.Store().All(); !slices.Equal(got, []string{"o.1", "o.3"}) {
				t.Fatalf("All after a write past the torn record = %v", got)
			}
		})
	}
}

// TestJournal_CorruptRecord flips a byte inside a middle record: the
// replay keeps what came before, counts the damage, sets the file aside,
// and the rewritten journal takes new records.
func TestJournal_CorruptRecord(t *testing.T) {
	dir := t.TempDir()
	j := open(t, dir)
	s := j.Store()
	s.Put("o.1", publish(1, 1, "first"))
	mid := fileSize(t, dir)
	s.Put("o.2", publish(2, 1, "damaged"))
	s.Put("o.3", publish(3, 1, "after the damage"))
	j.Close()
	size := fileSize(t, dir)
	flipByte(t, dir, mid+12)

	j = open(t, dir)
	st := j.Stats()
	if st.Corrupt != 1 || st.DroppedBytes != size-mid || st.Records != 1 {
		t.Fatalf("stats %+v", st)
	}
	if got := j.Store().All(); !slices.Equal(got, []string{"o.1"}) {
		t.Fatalf("All = %v", got)
	}
	if _, err := os.Stat(filepath.Join(dir, "journal.corrupt")); err != nil {
		t.Fatalf("damaged journal not kept: %v", err)
	}
	j.Store().Put("o.4", publish(4, 1, "new"))
	j = reopen(t, j, dir)
	if got := j.Store().All(); !slices.Equal(got, []string{"o.1", "o.4"}) {
		t.Fatalf("All after reopen = %v", got)
	}
	if st := j.Stats(); st.Corrupt != 0 {
		t.Fatalf("rewritten journal still damaged: %+v", st)
	}
}

// TestJournal_Compaction: churn makes the journal rewrite itself; live
// records survive, in order, and the file stays small.
func TestJournal_Compaction(t *testing.T) {
	dir := t.TempDir()
	const threshold = 4 << 10
	j := open(t, dir, journal.WithCompactBytes(threshold))
	s := j.Store()
	s.Put("o.1", publish(1, 1, "long-lived"))
	j.Accepted("task", 2, []byte("start"))
	for i := range 2000 {
		key := fmt.Sprintf("o.%d", 2+i%100)
		s.Put(key, publish(uint16(2+i%100), 1, "churn"))
		s.Del(key)
	}
	s.Put("o.5", publish(5, 1, "last"))
	st := j.Stats()
	if st.Compactions == 0 || st.Size > 3*threshold || st.Records != 3 {
		t.Fatalf("stats %+v: want compactions and a small file", st)
	}
	j = reopen(t, j, dir, journal.WithCompactBytes(threshold))
	if got := j.Store().All(); !slices.Equal(got, []string{"o.1", "o.5"}) {
		t.Fatalf("All after compaction = %v", got)
	}
	if payload(j.Store().Get("o.1")) != "long-lived" {
		t.Fatal("o.1 lost its payload")
	}
	if got := j.Interrupted(); len(got) != 1 || got[0].Attempt != 2 || string(got[0].Start) != "start" {
		t.Fatalf("Interrupted = %+v", got)
	}
	if _, err := os.Stat(filepath.Join(dir, "journal.compact")); !os.IsNotExist(err) {
		t.Fatalf("compaction temp file left behind: %v", err)
	}
}

// TestStore_ConcurrentPutDel hammers one journal from many goroutines, as
// paho's goroutines and the proplet's tasks do (run with -race).
func TestStore_ConcurrentPutDel(t *testing.T) {
	dir := t.TempDir()
	j := open(t, dir, journal.WithCompactBytes(8<<10))
	s := j.Store()
	const workers, each = 8, 300
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				id := uint16(w*each + i + 1)
				key := fmt.Sprintf("o.%d", id)
				s.Put(key, publish(id, 1, "x"))
				s.Put(fmt.Sprintf("i.%d", id), publish(id, 1, "in"))
				j.Accepted(key, i, nil)
				if s.Get(key) == nil {
					t.Errorf("%s missing right after Put", key)
				}
				_ = s.All()
				if i%10 != 0 { // keep one in ten
					s.Del(key)
					j.Finished(key, i)
				}
				s.Del(fmt.Sprintf("i.%d", id))
			}
		})
	}
	wg.Wait()
	want := workers * each / 10
	if got := len(s.All()); got != want {
		t.Fatalf("%d keys, want %d", got, want)
	}
	if st := j.Stats(); st.WriteErrors != 0 || st.Compactions == 0 {
		t.Fatalf("stats %+v: want compactions among the writers and no errors", st)
	}
	j = reopen(t, j, dir)
	if got := len(j.Store().All()); got != want {
		t.Fatalf("%d keys after reopen, want %d", got, want)
	}
	if got := len(j.Interrupted()); got != want {
		t.Fatalf("%d tasks after reopen, want %d", got, want)
	}
}

// TestStore_Enqueue: a message enqueued before connecting takes a free
// message id and is stored for paho to send.
func TestStore_Enqueue(t *testing.T) {
	dir := t.TempDir()
	j := open(t, dir)
	s := j.Store()
	s.Put("o.1", publish(1, 1, "from before"))
	s.Put("o.3", publish(3, 1, "from before"))
	if err := s.Enqueue("m/t/c/c/control/proplet/results", 2, []byte("queued")); err != nil {
		t.Fatal(err)
	}
	if err := s.Enqueue("x", 0, nil); !errors.Is(err, journal.ErrInvalid) {
		t.Fatalf("QoS 0 enqueued: %v", err)
	}
	j = reopen(t, j, dir)
	s = j.Store()
	if got := s.All(); !slices.Equal(got, []string{"o.1", "o.3", "o.2"}) {
		t.Fatalf("All = %v", got)
	}
	p := s.Get("o.2").(*packets.PublishPacket)
	if p.MessageID != 2 || p.Qos != 2 || string(p.Payload) != "queued" {
		t.Fatalf("enqueued %v", p)
	}
}

// TestStore_ErrorsCounted: writes that cannot happen are counted and
// reported, since paho's Store interface returns no errors.
func TestStore_ErrorsCounted(t *testing.T) {
	var mu sync.Mutex
	var reported []error
	j := open(t, t.TempDir(), journal.WithOnError(func(err error) {
		mu.Lock()
		reported = append(reported, err)
		mu.Unlock()
	}))
	s := j.Store()
	s.Put("t.sneaky", publish(1, 1, "not a paho key"))
	if err := j.Accepted(string(make([]byte, journal.MaxKey)), 1, nil); !errors.Is(err, journal.ErrInvalid) {
		t.Fatalf("Accepted with a key too long: %v", err)
	}
	j.Close()
	s.Put("o.2", publish(2, 1, "closed"))
	if err := j.Accepted("x", 1, nil); !errors.Is(err, journal.ErrClosed) {
		t.Fatalf("Accepted on a closed journal: %v", err)
	}
	if st := j.Stats(); st.WriteErrors != 4 {
		t.Fatalf("%d write errors, want 4", st.WriteErrors)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(reported) != 2 || !errors.Is(reported[0], journal.ErrInvalid) || !errors.Is(reported[1], journal.ErrClosed) {
		t.Fatalf("reported %v", reported)
	}
}

func TestOpen_Locked(t *testing.T) {
	dir := t.TempDir()
	j := open(t, dir)
	if _, err := journal.Open(dir); !errors.Is(err, journal.ErrLocked) {
		t.Fatalf("second Open: %v, want ErrLocked", err)
	}
	j.Close()
	open(t, dir) // free again
}

func TestOpen_Options(t *testing.T) {
	if _, err := journal.Open(t.TempDir(), journal.WithCompactBytes(0)); err == nil {
		t.Fatal("accepted compact bytes 0")
	}
	dir := t.TempDir()
	j := open(t, dir, journal.WithSync(true))
	j.Store().Put("o.1", publish(1, 1, "synced"))
	j = reopen(t, j, dir)
	if payload(j.Store().Get("o.1")) != "synced" {
		t.Fatal("synced record lost")
	}
}

func fileSize(t testing.TB, dir string) int64 {
	t.Helper()
	fi, err := os.Stat(filepath.Join(dir, "journal"))
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

func truncate(t testing.TB, dir string, size int64) {
	t.Helper()
	if err := os.Truncate(filepath.Join(dir, "journal"), size); err != nil {
		t.Fatal(err)
	}
}

func flipByte(t testing.TB, dir string, off int64) {
	t.Helper()
	path := filepath.Join(dir, "journal")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[off] ^= 0xff
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

package journal

import (
	"fmt"
	"testing"
)

// TestDoneQueue_Bounded: a task finished again and again, and a long run
// of tasks past the limit, leave a queue of about the live records.
func TestDoneQueue_Bounded(t *testing.T) {
	j, err := Open(t.TempDir(), WithDoneLimit(10))
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	for i := range 5000 {
		if err := j.Finished("same", i); err != nil {
			t.Fatal(err)
		}
		if err := j.Finished(fmt.Sprint("t", i), 1); err != nil {
			t.Fatal(err)
		}
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if n := len(j.done.keys) - j.done.head; j.done.live != 10 || n > 2*10+64+1 {
		t.Fatalf("%d live, %d queued (%d slots)", j.done.live, n, cap(j.done.keys))
	}
	if cap(j.done.keys) > 1024 {
		t.Fatalf("queue of %d slots for 10 records", cap(j.done.keys))
	}
}

package journal_test

import (
	"fmt"
	"testing"

	"github.com/jetprop/jetprop/workers/journal"
)

// wantDone checks which tasks the journal remembers as done, and at which
// attempt; a negative attempt means "not done".
func wantDone(t testing.TB, j *journal.Journal, want map[string]int) {
	t.Helper()
	for id, attempt := range want {
		got, ok := j.Done(id)
		switch {
		case attempt < 0 && ok:
			t.Errorf("Done(%s) = %d, want not done", id, got)
		case attempt >= 0 && (!ok || got != attempt):
			t.Errorf("Done(%s) = %d, %v, want %d", id, got, ok, attempt)
		}
	}
}

func TestJournal_Done(t *testing.T) {
	t.Run("newest attempt kept", func(t *testing.T) {
		j := open(t, t.TempDir())
		wantDone(t, j, map[string]int{"a": -1})
		for _, attempt := range []int{2, 1, 3} {
			if err := j.Finished("a", attempt); err != nil {
				t.Fatal(err)
			}
		}
		wantDone(t, j, map[string]int{"a": 3})
	})
	t.Run("an older attempt ending leaves a newer one accepted", func(t *testing.T) {
		dir := t.TempDir()
		j := open(t, dir)
		j.Accepted("a", 2, []byte("first"))
		j.Accepted("a", 3, []byte("second"))
		j.Finished("a", 2)
		wantDone(t, j, map[string]int{"a": 2})
		j = reopen(t, j, dir)
		if got := j.Interrupted(); len(got) != 1 || got[0].Attempt != 3 {
			t.Fatalf("Interrupted = %+v, want attempt 3", got)
		}
	})
	t.Run("clear makes an interrupted attempt done", func(t *testing.T) {
		dir := t.TempDir()
		j := open(t, dir)
		j.Accepted("a", 4, nil)
		j = reopen(t, j, dir)
		for _, e := range j.Interrupted() {
			if err := j.Clear(e); err != nil {
				t.Fatal(err)
			}
		}
		wantDone(t, j, map[string]int{"a": 4})
		j = reopen(t, j, dir)
		wantDone(t, j, map[string]int{"a": 4})
		if got := j.Interrupted(); len(got) != 0 {
			t.Fatalf("Interrupted = %+v", got)
		}
	})
	t.Run("empty task id", func(t *testing.T) {
		if err := open(t, t.TempDir()).Finished("", 1); err == nil {
			t.Fatal("finished a task without id")
		}
	})
}

// TestJournal_DoneBound: beyond the limit the done record written longest
// ago goes first; a newer attempt of a task counts as written anew.
func TestJournal_DoneBound(t *testing.T) {
	dir := t.TempDir()
	j := open(t, dir, journal.WithDoneLimit(3))
	for i := 1; i <= 5; i++ {
		j.Finished(fmt.Sprint("t", i), 1)
	}
	wantDone(t, j, map[string]int{"t1": -1, "t2": -1, "t3": 1, "t4": 1, "t5": 1})
	j.Finished("t3", 2) // t3 is now the newest
	j.Finished("t6", 1) // so t4 goes
	wantDone(t, j, map[string]int{"t3": 2, "t4": -1, "t5": 1, "t6": 1})
	if st := j.Stats(); st.Records != 3 {
		t.Fatalf("%d records, want 3", st.Records)
	}

	j = reopen(t, j, dir, journal.WithDoneLimit(3))
	wantDone(t, j, map[string]int{"t3": 2, "t4": -1, "t5": 1, "t6": 1})
	j.Finished("t7", 1) // the order survived the reopen: t5 goes
	wantDone(t, j, map[string]int{"t3": 2, "t5": -1, "t6": 1, "t7": 1})

	// A smaller limit drops the oldest at Open.
	j = reopen(t, j, dir, journal.WithDoneLimit(1))
	wantDone(t, j, map[string]int{"t3": -1, "t6": -1, "t7": 1})
	j = reopen(t, j, dir)
	wantDone(t, j, map[string]int{"t3": -1, "t6": -1, "t7": 1})

	if _, err := journal.Open(t.TempDir(), journal.WithDoneLimit(0)); err == nil {
		t.Fatal("accepted done limit 0")
	}
}

// TestJournal_DoneCompaction: the churn of many tasks compacts the
// journal; the done records survive it, and a reopen, with their order.
func TestJournal_DoneCompaction(t *testing.T) {
	dir := t.TempDir()
	const limit, tasks = 50, 3000
	opts := []journal.Option{journal.WithCompactBytes(4 << 10), journal.WithDoneLimit(limit)}
	j := open(t, dir, opts...)
	s := j.Store()
	for i := range tasks {
		id := fmt.Sprint("task-", i)
		j.Accepted(id, 1, []byte(`{"name":"add"}`))
		s.Put("o.1", publish(1, 1, "result"))
		j.Finished(id, 1)
		s.Del("o.1")
	}
	st := j.Stats()
	if st.Compactions == 0 || st.Records != limit || st.WriteErrors != 0 {
		t.Fatalf("stats %+v: want compactions and %d records", st, limit)
	}
	want := map[string]int{fmt.Sprint("task-", tasks-limit-1): -1}
	for i := tasks - limit; i < tasks; i++ {
		want[fmt.Sprint("task-", i)] = 1
	}
	wantDone(t, j, want)
	j = reopen(t, j, dir, opts...)
	wantDone(t, j, want)
	j.Finished("next", 1)
	wantDone(t, j, map[string]int{fmt.Sprint("task-", tasks-limit): -1, "next": 1})
	if got := j.Interrupted(); len(got) != 0 {
		t.Fatalf("Interrupted = %+v", got)
	}
}

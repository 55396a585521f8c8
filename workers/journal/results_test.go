package journal_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/jetprop/jetprop/workers/journal"
)

// keptResults lists the kept results as "task/attempt/message", oldest first.
func keptResults(j *journal.Journal) []string {
	var out []string
	for _, r := range j.Results() {
		out = append(out, fmt.Sprintf("%s/%d/%s", r.TaskID, r.Attempt, r.Message))
	}
	return out
}

func keep(t testing.TB, j *journal.Journal, task string, attempt int, msg string) []journal.Result {
	t.Helper()
	dropped, err := j.KeepResult(task, attempt, []byte(msg))
	if err != nil {
		t.Fatal(err)
	}
	return dropped
}

func TestJournal_KeepResult(t *testing.T) {
	t.Run("kept until acked, across a restart and a compaction", func(t *testing.T) {
		dir := t.TempDir()
		j := open(t, dir, journal.WithCompactBytes(1))
		keep(t, j, "a", 1, "ra")
		keep(t, j, "b", 2, "rb")
		keep(t, j, "a", 3, "ra3") // a newer attempt replaces the older
		j = reopen(t, j, dir, journal.WithCompactBytes(1))
		if got, want := keptResults(j), []string{"b/2/rb", "a/3/ra3"}; !slices.Equal(got, want) {
			t.Fatalf("Results = %q, want %q", got, want)
		}
		if r, ok := j.Result("a"); !ok || r.Attempt != 3 || string(r.Message) != "ra3" {
			t.Errorf("Result(a) = %+v, %v", r, ok)
		}
		for _, tc := range []struct {
			task    string
			attempt int
			want    bool
		}{{"a", 2, false}, {"a", 3, true}, {"a", 3, false}, {"x", 1, false}} {
			if got, err := j.ResultAcked(tc.task, tc.attempt); err != nil || got != tc.want {
				t.Errorf("ResultAcked(%s, %d) = %v, %v, want %v", tc.task, tc.attempt, got, err, tc.want)
			}
		}
		if st := j.Stats(); st.Compactions == 0 {
			t.Errorf("no compaction ran: %+v", st)
		}
		j = reopen(t, j, dir)
		if got, want := keptResults(j), []string{"b/2/rb"}; !slices.Equal(got, want) {
			t.Fatalf("Results after ack and restart = %q, want %q", got, want)
		}
	})
	t.Run("oldest dropped beyond the count", func(t *testing.T) {
		dir := t.TempDir()
		j := open(t, dir, journal.WithResultLimit(2, 1<<20))
		keep(t, j, "a", 1, "x")
		keep(t, j, "b", 1, "x")
		dropped := keep(t, j, "c", 1, "x")
		if len(dropped) != 1 || dropped[0].TaskID != "a" {
			t.Errorf("dropped %+v, want a", dropped)
		}
		if got, want := keptResults(j), []string{"b/1/x", "c/1/x"}; !slices.Equal(got, want) {
			t.Errorf("Results = %q, want %q", got, want)
		}
		j = reopen(t, j, dir, journal.WithResultLimit(1, 1<<20))
		if got := j.DroppedAtOpen(); len(got) != 1 || got[0].TaskID != "b" {
			t.Errorf("DroppedAtOpen = %+v, want b", got)
		}
		if got, want := keptResults(j), []string{"c/1/x"}; !slices.Equal(got, want) {
			t.Errorf("Results = %q, want %q", got, want)
		}
	})
	t.Run("oldest dropped beyond the bytes", func(t *testing.T) {
		j := open(t, t.TempDir(), journal.WithResultLimit(100, 250))
		big := strings.Repeat("x", 100)
		keep(t, j, "a", 1, big)
		keep(t, j, "b", 1, big)
		keep(t, j, "a", 1, big) // replaced, not counted twice
		if got := keptResults(j); len(got) != 2 {
			t.Fatalf("Results = %d, want 2", len(got))
		}
		if dropped := keep(t, j, "c", 1, big); len(dropped) != 1 || dropped[0].TaskID != "b" {
			t.Errorf("dropped %+v, want b (a was kept again later)", dropped)
		}
	})
	t.Run("bad limits", func(t *testing.T) {
		if _, err := journal.Open(t.TempDir(), journal.WithResultLimit(0, 1)); err == nil {
			t.Error("a zero count was taken")
		}
	})
}

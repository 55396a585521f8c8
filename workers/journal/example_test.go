package journal_test

import (
	"fmt"
	"os"

	"github.com/jetprop/jetprop/workers/journal"
)

// A task accepted and never finished is found by the next Open.
func Example() {
	dir, _ := os.MkdirTemp("", "journal-example-")
	defer os.RemoveAll(dir)

	j, _ := journal.Open(dir)
	j.Accepted("task-1", 2, []byte(`{"name":"add"}`))
	j.Accepted("task-2", 1, nil)
	j.Finished("task-2", 1)
	j.Close() // or the process dies

	j, _ = journal.Open(dir)
	defer j.Close()
	for _, e := range j.Interrupted() {
		fmt.Printf("%s attempt %d: %s\n", e.TaskID, e.Attempt, e.Start)
		j.Clear(e)
	}
	fmt.Println(len(j.Interrupted()), "left")
	// Output:
	// task-1 attempt 2: {"name":"add"}
	// 0 left
}

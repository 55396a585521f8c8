package engine_test

import (
	"errors"
	"reflect"
	"testing"

	"github.com/jetprop/jetprop/events"
)

var codec = events.DefaultCodec()

// checkErr fails unless err matches want (nil wants no error).
func checkErr(t testing.TB, err, want error) {
	t.Helper()
	if want == nil && err != nil || want != nil && !errors.Is(err, want) {
		t.Fatalf("err = %v, want %v", err, want)
	}
}

func sameState[S any](t testing.TB, what string, got, want S) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s:\n got %+v\nwant %+v", what, got, want)
	}
}

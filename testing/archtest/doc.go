// Package archtest holds the layer rules of the jetprop tree — which
// package may import which — and the test that enforces them on the code
// and keeps docs/ARCHITECTURE.md's layer table generated from them.
//
//	go test ./testing/archtest            # check imports and the doc
//	go test ./testing/archtest -update    # rewrite the doc's table from Layers
package archtest

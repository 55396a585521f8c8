// Package examples embeds the example modules so `jetprop demo` runs them
// from any directory. Each .wasm is built from the .wat beside it (`make wasm`).
package examples

import (
	_ "embed"
	"slices"
)

var (
	//go:embed add/add.wasm
	add []byte
	//go:embed uppercase/uppercase.wasm
	uppercase []byte
)

// Add exports add(i32, i32) -> i32.
func Add() []byte { return slices.Clone(add) }

// Uppercase is a WASI command copying stdin to stdout in upper case.
func Uppercase() []byte { return slices.Clone(uppercase) }

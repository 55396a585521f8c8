// Package wire is the Propeller MQTT wire protocol: topic names and the JSON
// payloads exchanged between a manager (jetprop's engine) and proplets.
//
// It depends only on the standard library so that the proplet binary can use
// it without pulling in nats-server. Decoding is lenient where Propeller's
// components disagree (numbers or strings for inputs, three timestamp forms in
// metrics, string or JSON results) and strict where a field is required.
package wire

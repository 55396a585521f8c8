// Package outbound is what jetprop's server-side components send to
// devices over a real MQTT client connection (paho): the Publisher, at
// QoS >= 1, so messages are kept for proplets whose persistent session is
// offline (messages published from the NATS side would reach MQTT
// subscribers only at QoS 0), and the ChunkServer, which answers
// Propeller's module requests (registry/proplet) with chunks.
//
// It needs no NATS and no event store: the engine (adapters/mqtt) and
// `jetprop proxy` (adapters/mqtt/proxy) each plug their own ports in —
// where modules are resolved and read from, and what records a transfer's
// progress.
package outbound

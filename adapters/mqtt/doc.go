// Package mqtt is jetprop's side of the Propeller protocol over the MQTT
// listener built into nats-server.
//
// Inbound: the stream EDGE_IN captures the NATS subjects of every topic
// proplets publish on, the moment a message arrives, so nothing a device says
// is lost while the engine is down. Inbound consumes it with two durable
// consumers, one per lane (liveness: create and alive; work: the rest),
// spreads each lane's messages over workers by device (one device's
// messages of a lane stay in order), decodes leniently, turns messages into
// engine commands and acks after recording. Malformed messages, and
// messages the engine refuses (a refusal the handler confirmed on the
// stream leader's state), are counted (ignored ones by reason), logged at
// most once a minute per reason and acked: they never crash or block the
// consumer. A refusal the leader could not confirm is redelivered.
//
// Outbound: start and stop messages go through a paho MQTT client at QoS >= 1,
// because messages published from the NATS side reach MQTT subscribers only
// at QoS 0 and are not kept for offline sessions. Dispatcher turns task
// events into those messages; it puts the values of the secrets a task's
// env refers to into the start message, and nowhere else, only for a
// device that listens on its own topics.
package mqtt

// Package e2e holds jetprop's process-level tests. They build bin/jetprop
// and bin/proplet once (go build, no -race), run them as subprocesses on free
// loopback ports with data in temp dirs, kill -9 the server at chosen and at
// random moments, start it again on the same data dir and ports, and check
// that every task and device is as it was and that results proplets
// published while the server was down are recorded once it is back. They
// also check nats-server's MQTT listener, as jetprop uses it, against MQTT
// clients nobody here wrote: mosquitto_pub and mosquitto_sub (Debian package
// mosquitto-clients; the test skips without them, and fails without them
// when JETPROP_REQUIRE_MOSQUITTO is set).
//
// The package has no code outside its tests. Run it with
//
//	go test -count=1 ./testing/e2e/
//
// Every test skips with -short. Environment:
//
//	JETPROP_CHAOS_ROUNDS      random kills per TestKill9_AnyMoment variant (default 3)
//	JETPROP_CHAOS_SEED        replay the kill timing of a logged seed
//	JETPROP_WORKFLOW_KILLS    most kills in TestKill9_Workflows (default 3)
//	JETPROP_TEST_LOG          copy the subprocesses' logs to the test output as they run
//	JETPROP_E2E_LOGDIR        keep the subprocesses' logs in this directory
//	JETPROP_KNOWN_BUGS        run the tests that show known, reported bugs (skipped otherwise)
//	JETPROP_REQUIRE_MOSQUITTO fail, not skip, when mosquitto_pub or mosquitto_sub is missing (CI sets it)
//	JETPROP_REQUIRE_REGISTRY  the same for the OCI registry binary (see testing/registrytest)
package e2e

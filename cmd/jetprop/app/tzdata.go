package app

// The time zone database is embedded (about 450 KB), so a cron task's or
// a workflow's timezone resolves on a host without /usr/share/zoneinfo
// (a scratch or distroless image): the engine checks the zone at create
// and the embedded broker's scheduler loads it at every firing.
import _ "time/tzdata"

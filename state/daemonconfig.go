// SPDX-License-Identifier: MIT

package state

import (
	"strconv"
	"strings"
	"time"

	"github.com/llmkey/llmkey/rotate"
)

// DaemonConfig is the [daemon] table, as the keyfile says it: a setting
// left out is its zero value. Everything outside this package reads a
// setting through its accessor below (Attempts, RetryWindow, ...), which
// puts in the default, so that a setting left out can never act as a
// zero (a zero timeout, no attempts); a test keeps it so.
type DaemonConfig struct {
	Listen         string          `toml:"listen"`
	Strategy       rotate.Strategy `toml:"strategy"`
	AllowedOrigins []string        `toml:"allowed_origins"`
	// ResponseHeaderTimeout bounds the wait for an upstream's response
	// headers; StreamIdleTimeout the silence inside a response body.
	ResponseHeaderTimeout Duration `toml:"response_header_timeout"`
	StreamIdleTimeout     Duration `toml:"stream_idle_timeout"`
	// DrainTimeout bounds how long stop or SIGTERM waits for requests in
	// flight before the daemon exits anyway.
	DrainTimeout Duration `toml:"drain_timeout"`
	// ClientTimeout bounds a client that holds its slot and its key
	// without moving: the time it may take to send its body, and the
	// longest a write may wait for a client that stopped reading.
	ClientTimeout Duration `toml:"client_timeout"`

	// MaxWait is how long a request may wait for a cooling key before it
	// is answered 429; nil means the default, "0s" means never wait.
	MaxWait *Duration `toml:"max_wait"`
	// MaxAttempts bounds the keys one request tries; RetryDeadline the
	// time after which no new attempt starts.
	MaxAttempts   int      `toml:"max_attempts"`
	RetryDeadline Duration `toml:"retry_deadline"`
	// MaxBodyMB bounds a request body, which is kept for retries.
	MaxBodyMB int `toml:"max_body_mb"`
	// MaxInFlight caps the requests the proxy serves at once.
	MaxInFlight int `toml:"max_in_flight"`
	// MaxWebSockets caps the WebSockets open at once, apart from the
	// requests in flight.
	MaxWebSockets int `toml:"max_websockets"`
	// MaxBufferedMB caps the request bodies held in memory at once, all
	// requests together (each is kept to retry it on another key).
	MaxBufferedMB int `toml:"max_buffered_mb"`
	// ProbeInterval is how soon a parked key is tried again.
	ProbeInterval Duration `toml:"probe_interval"`
	// StreamUsage asks OpenAI-format chat streams that did not ask for
	// usage to report it (stream_options.include_usage), so that their
	// tokens are counted. nil means the default, on.
	StreamUsage *bool `toml:"stream_usage"`
	// LogRequests writes a line to the log for every request served;
	// without it the log has only failures, retries and the daemon's own
	// events.
	LogRequests bool `toml:"log_requests"`
	// PaceBelow: a key whose answers say less than this share of a limit
	// is left gets requests only when no other key can take them, until
	// the limit resets. nil means the default; 0 turns pacing off.
	PaceBelow *float64 `toml:"pace_below"`
}

// What a [daemon] setting is when the keyfile leaves it out. A
// non-streamed completion of a reasoning model can take minutes before
// its first header.
const (
	DefaultListen                = "127.0.0.1:5565"
	DefaultResponseHeaderTimeout = 10 * time.Minute
	DefaultStreamIdleTimeout     = 5 * time.Minute
	DefaultDrainTimeout          = 30 * time.Second
	DefaultClientTimeout         = time.Minute
	DefaultMaxWait               = 5 * time.Second
	DefaultMaxAttempts           = 4
	DefaultRetryDeadline         = time.Minute
	DefaultMaxBodyMB             = 32
	DefaultMaxInFlight           = 4096
	DefaultMaxWebSockets         = 256
	DefaultMaxBufferedMB         = 256
	DefaultProbeInterval         = rotate.DefaultProbeInterval
	DefaultPaceBelow             = 0.1
)

// The largest values the keyfile may give: beyond them a setting is a
// mistake, and could make the daemon allocate or overflow.
const (
	MaxAttemptsLimit   = 100
	MaxBodyMBLimit     = 1024
	MaxInFlightLimit   = 1000000
	MaxBufferedMBLimit = 65536
	MaxDuration        = 7 * 24 * time.Hour
	MaxPrice           = 1e6 // dollars per million tokens
)

func orInt(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

// HeaderTimeout is [daemon] response_header_timeout, or its default; a
// [provider.NAME] table may override it (Provider.ResponseHeaderTimeout).
func (d DaemonConfig) HeaderTimeout() time.Duration {
	return d.ResponseHeaderTimeout.or(DefaultResponseHeaderTimeout)
}

// IdleTimeout is [daemon] stream_idle_timeout, or its default; a
// [provider.NAME] table may override it (Provider.StreamIdleTimeout).
func (d DaemonConfig) IdleTimeout() time.Duration {
	return d.StreamIdleTimeout.or(DefaultStreamIdleTimeout)
}

// DrainWait is [daemon] drain_timeout, or its default.
func (d DaemonConfig) DrainWait() time.Duration { return d.DrainTimeout.or(DefaultDrainTimeout) }

// ClientWait is [daemon] client_timeout, or its default.
func (d DaemonConfig) ClientWait() time.Duration { return d.ClientTimeout.or(DefaultClientTimeout) }

// WaitLimit is [daemon] max_wait, or its default.
func (d DaemonConfig) WaitLimit() time.Duration {
	if d.MaxWait == nil {
		return DefaultMaxWait
	}
	return time.Duration(*d.MaxWait)
}

// Attempts is [daemon] max_attempts, or its default.
func (d DaemonConfig) Attempts() int { return orInt(d.MaxAttempts, DefaultMaxAttempts) }

// RetryWindow is [daemon] retry_deadline, or its default: no attempt
// starts that long after the request arrived.
func (d DaemonConfig) RetryWindow() time.Duration { return d.RetryDeadline.or(DefaultRetryDeadline) }

// BodyLimit is [daemon] max_body_mb in bytes, or its default.
func (d DaemonConfig) BodyLimit() int64 { return int64(orInt(d.MaxBodyMB, DefaultMaxBodyMB)) << 20 }

// InFlightLimit is [daemon] max_in_flight, or its default.
func (d DaemonConfig) InFlightLimit() int { return orInt(d.MaxInFlight, DefaultMaxInFlight) }

// SocketLimit is [daemon] max_websockets, or its default.
func (d DaemonConfig) SocketLimit() int { return orInt(d.MaxWebSockets, DefaultMaxWebSockets) }

// BufferedLimit is [daemon] max_buffered_mb in bytes, or its default.
func (d DaemonConfig) BufferedLimit() int64 {
	return int64(orInt(d.MaxBufferedMB, DefaultMaxBufferedMB)) << 20
}

// ProbeAfter is [daemon] probe_interval, or its default: how soon a
// parked key is first tried again.
func (d DaemonConfig) ProbeAfter() time.Duration { return d.ProbeInterval.or(DefaultProbeInterval) }

// AddStreamUsage reports whether the proxy adds stream_options.include_usage.
func (d DaemonConfig) AddStreamUsage() bool { return d.StreamUsage == nil || *d.StreamUsage }

// PaceShare is [daemon] pace_below, or its default.
func (d DaemonConfig) PaceShare() float64 {
	if d.PaceBelow == nil {
		return DefaultPaceBelow
	}
	return *d.PaceBelow
}

// DaemonDefault is what a [daemon] setting is when the keyfile leaves it
// out, written as the keyfile would write it ("5s", "32", "true"), for
// the documentation; "" for allowed_origins, which has none.
func DaemonDefault(field string) string {
	var d DaemonConfig
	switch field {
	case "listen":
		return (&Config{}).Listen()
	case "strategy":
		return string(rotate.DefaultStrategy)
	case "response_header_timeout":
		return FormatDuration(d.HeaderTimeout())
	case "stream_idle_timeout":
		return FormatDuration(d.IdleTimeout())
	case "drain_timeout":
		return FormatDuration(d.DrainWait())
	case "client_timeout":
		return FormatDuration(d.ClientWait())
	case "max_wait":
		return FormatDuration(d.WaitLimit())
	case "max_attempts":
		return strconv.Itoa(d.Attempts())
	case "retry_deadline":
		return FormatDuration(d.RetryWindow())
	case "max_body_mb":
		return strconv.FormatInt(d.BodyLimit()>>20, 10)
	case "max_in_flight":
		return strconv.Itoa(d.InFlightLimit())
	case "max_websockets":
		return strconv.Itoa(d.SocketLimit())
	case "max_buffered_mb":
		return strconv.FormatInt(d.BufferedLimit()>>20, 10)
	case "probe_interval":
		return FormatDuration(d.ProbeAfter())
	case "stream_usage":
		return strconv.FormatBool(d.AddStreamUsage())
	case "log_requests":
		return strconv.FormatBool(d.LogRequests)
	case "pace_below":
		return strconv.FormatFloat(d.PaceShare(), 'g', -1, 64)
	}
	return ""
}

// FormatDuration writes d as a person would: "1m", "30s", "1h30m", not
// time.Duration's "1m0s".
func FormatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

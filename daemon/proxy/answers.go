// SPDX-License-Identifier: MIT

package proxy

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/llmkey/llmkey/daemon/wire"
	"github.com/llmkey/llmkey/rotate"
	"github.com/llmkey/llmkey/state"
)

// What the client sees when a request is not served: the provider's own
// last answer, or llmkey's, in the provider's error shape, with
// X-Llmkey-Error and Retry-After where a wait is known.

// answerFailed gives the client the last attempt's answer: the provider's
// own error, unchanged but for secrets, or llmkey's word for no answer.
func (h *Handler) answerFailed(w http.ResponseWriter, up *Upstream, a *attempt, n int, secrets []string, log *reqLog, start time.Time) {
	if a.err != nil {
		if a.timeout {
			wire.WriteError(w, up.Kind, wire.Error{Status: http.StatusGatewayTimeout, Code: wire.UpstreamTimeout,
				Message: fmt.Sprintf("%s sent no response headers within %s ([daemon] response_header_timeout)", up.Name, up.ResponseHeaderTimeout)})
			return
		}
		wire.WriteError(w, up.Kind, wire.Error{Status: http.StatusBadGateway, Code: wire.UpstreamUnreachable,
			Message: fmt.Sprintf("could not reach %s at %s: %s", up.Name, hostOf(up.BaseURL), redact(rootCause(a.err), secrets))})
		return
	}
	hdr := w.Header()
	copyHeader(hdr, a.resp.Header)
	removeHopHeaders(hdr)
	hdr.Set("Content-Length", strconv.Itoa(len(a.errBody)))
	hdr.Set("X-Llmkey-Key", up.Name+"/"+a.key.Name)
	hdr.Set("X-Llmkey-Attempts", strconv.Itoa(n))
	w.WriteHeader(a.resp.StatusCode)
	w.Write(a.errBody)
	log.Info("upstream error", "key", a.key.Name, "status", a.resp.StatusCode, "attempts", n, "ms", h.Clock.Now().Sub(start).Milliseconds())
}

// answerDenied answers when no key can take the request now: with the
// last attempt's own answer when there was one (the 401 that parked the
// last key says more than "no usable key"), else with deniedError.
func (h *Handler) answerDenied(w http.ResponseWriter, q *request, res result) {
	up, den, last, log := res.up, res.denied, res.failed, q.log
	h.Events.Denied(up.Name, den.Code)
	e := deniedError(up.Name, den, h.Clock.Now())
	log.Info("no usable key", "code", den.Code, "detail", den.Detail, "retry_after", e.RetryAfter.Round(time.Second))
	// The last attempt's own answer says more than "no usable key" (the
	// 401 that parked the last key; the 500 of a conversation's key).
	busyForNow := den.Code == rotate.ConversationKeyBusy && !den.Until.IsZero()
	if last != nil && den.Code != rotate.AllKeysCooling && den.Code != rotate.ProviderUnavailable && !busyForNow {
		h.answerFailed(w, up, last, res.n, q.snap.Secrets, log, q.start)
		return
	}
	_, label := q.grant.selection(up.Name)
	h.refused(up, den.Key, q.model, label, string(den.Code))
	wire.WriteError(w, up.Kind, e)
}

// refused counts a request llmkey answered itself, with code, sent
// upstream on no key: in the ledger (under the key it could only go to,
// else its provider) and in the pool's history.
func (h *Handler) refused(up *Upstream, key, model, label, code string) {
	k := state.UsageKey{Provider: up.Name, Key: key, Model: model, Label: label}
	if key != "" {
		k.Fingerprint = up.Keys[key].Fingerprint
	}
	h.Usage.Add(h.Clock.Now(), k, state.Counts{Refused: map[string]int64{code: 1}})
	if up.Pool != nil {
		up.Pool.Refused(key)
	}
}

// deniedError is llmkey's answer when no key of provider can serve, at
// now: what happened, when to retry (at least a second, where a key's
// return is known), and what the person can do.
func deniedError(provider string, den *rotate.Denial, now time.Time) wire.Error {
	var retryAfter time.Duration
	if !den.Until.IsZero() {
		retryAfter = max(den.Until.Sub(now), time.Second)
	}
	e := wire.Error{Status: http.StatusServiceUnavailable, Code: wire.Code(den.Code), RetryAfter: retryAfter}
	switch den.Code {
	case rotate.AllKeysCooling:
		when := "soon"
		if retryAfter > 0 {
			when = fmt.Sprintf("in %s, at %s", retryAfter.Round(time.Second), now.Add(retryAfter).Format("15:04:05"))
		}
		e.Status = http.StatusTooManyRequests
		e.Message = fmt.Sprintf("every %s key is rate limited or at its limit; the first frees %s (%s). Add a key, or raise [daemon] max_wait to wait for it", provider, when, den.Detail)
	case rotate.ProviderUnavailable:
		e.Message = den.Detail
	case rotate.ConversationKeyBusy:
		e.Status = http.StatusTooManyRequests
		e.Message = den.Detail
	case rotate.ConversationKeyGone:
		e.Status = http.StatusConflict
		e.Message = den.Detail
	case rotate.NoKeys:
		e.RetryAfter = 0
		e.Message = den.Detail + ": add one with 'llmkey add " + provider + "', or check the key's models"
	default:
		e.Message = fmt.Sprintf("no %s key is usable now (%s); 'llmkey enable %s/NAME' or 'llmkey reset %s/NAME' brings one back", provider, den.Detail, provider, provider)
	}
	return e
}

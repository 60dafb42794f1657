// SPDX-License-Identifier: MIT

//go:build linux

package secrets

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	dbus "github.com/godbus/dbus/v5"
	"github.com/zalando/go-keyring"
)

const (
	ssDest    = "org.freedesktop.secrets"
	ssPath    = dbus.ObjectPath("/org/freedesktop/secrets")
	ssService = "org.freedesktop.Secret.Service"
	ssItem    = "org.freedesktop.Secret.Item"
	ssSession = "org.freedesktop.Secret.Session"
	ssPrompt  = "org.freedesktop.Secret.Prompt"
)

// promptTimeout is how long an unlock prompt stays up for the user.
const promptTimeout = 2 * time.Minute

// After a dismissed prompt, none is shown for promptBackoff, doubled
// with each one dismissed in a row, up to maxPromptBackoff.
const (
	promptBackoff    = time.Minute
	maxPromptBackoff = 30 * time.Minute
)

// keychainGet reads account's secret from the Secret Service, spoken to
// over D-Bus here rather than through go-keyring (which still stores and
// deletes, from the CLI's short-lived processes): go-keyring's unlock
// adds a channel for the prompt's signal to the process's shared
// connection and never removes it, so every read of a locked keychain
// left one behind, and each later signal started a goroutine for each of
// them, for good. Here each read has a connection of its own, closed when
// the read ends; at most one unlock prompt is up at a time, and after one
// was dismissed none is shown for a while (reads meanwhile say the
// keychain is locked, and read it as soon as it is unlocked some other
// way).
func keychainGet(ctx context.Context, account string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, CommandTimeout)
	defer cancel()
	conn, err := sessionBus(ctx)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	item, locked, err := findItem(ctx, conn, account)
	if err != nil {
		return "", err
	}
	if locked {
		if err := unlocking.unlock(ctx, item); err != nil {
			return "", err
		}
	} else {
		unlocking.unlocked()
	}
	return getSecret(ctx, conn, item)
}

// sessionBus is a connection of the caller's own to the session bus,
// closed when ctx ends if not before. No bus is started when none runs:
// that is a *NoBusError.
func sessionBus(ctx context.Context) (*dbus.Conn, error) {
	if err := needBus(); err != nil {
		return nil, err
	}
	conn, err := dbus.SessionBusPrivateNoAutoStartup(dbus.WithContext(ctx))
	if err != nil {
		return nil, &NoBusError{Address: os.Getenv("DBUS_SESSION_BUS_ADDRESS"), Err: err}
	}
	if err = conn.Auth(nil); err == nil {
		err = conn.Hello()
	}
	if err != nil {
		conn.Close()
		return nil, err
	}
	return conn, nil
}

// needBus says when there is no session bus to ask, as godbus looks for
// one (DBUS_SESSION_BUS_ADDRESS, else the systemd user session's
// /run/user/UID/bus), before anything would try to start one: go-keyring
// runs dbus-launch then, which fails with its own error, or starts a
// bus with no Secret Service on it.
func needBus() error {
	if a := os.Getenv("DBUS_SESSION_BUS_ADDRESS"); a != "" && a != "autolaunch:" {
		return nil
	}
	run := fmt.Sprintf("/run/user/%d/", os.Getuid())
	for _, f := range []string{"bus", "dbus-session"} {
		if _, err := os.Stat(run + f); err == nil {
			return nil
		}
	}
	return &NoBusError{}
}

// findItem is the item holding account's secret, and whether it is
// locked. Searching asks for no unlock.
func findItem(ctx context.Context, conn *dbus.Conn, account string) (dbus.ObjectPath, bool, error) {
	var unlocked, locked []dbus.ObjectPath
	attrs := map[string]string{"service": Service, "username": account}
	search := func() error {
		return conn.Object(ssDest, ssPath).CallWithContext(ctx, ssService+".SearchItems", 0, attrs).Store(&unlocked, &locked)
	}
	err := search()
	// gnome-keyring answers "not implemented" for a moment while it
	// starts, and now and then while a prompt it could not show ends:
	// asked again a moment later, it answers.
	for try := 0; try < 5 && isUnknownMethod(err); try++ {
		select {
		case <-ctx.Done():
			return "", false, err
		case <-time.After(20 * time.Millisecond << try):
		}
		err = search()
	}
	switch {
	case err != nil:
		return "", false, err
	case len(unlocked) > 0:
		return unlocked[0], false, nil
	case len(locked) > 0:
		return locked[0], true, nil
	}
	return "", false, keyring.ErrNotFound
}

// isUnknownMethod says err is D-Bus's "no such method" answer.
func isUnknownMethod(err error) bool {
	var e dbus.Error
	return errors.As(err, &e) && e.Name == "org.freedesktop.DBus.Error.UnknownMethod"
}

func getSecret(ctx context.Context, conn *dbus.Conn, item dbus.ObjectPath) (string, error) {
	var out dbus.Variant
	var session dbus.ObjectPath
	err := conn.Object(ssDest, ssPath).CallWithContext(ctx, ssService+".OpenSession", 0, "plain", dbus.MakeVariant("")).Store(&out, &session)
	if err != nil {
		return "", err
	}
	defer conn.Object(ssDest, session).CallWithContext(ctx, ssSession+".Close", 0)
	var secret struct {
		Session     dbus.ObjectPath
		Parameters  []byte
		Value       []byte
		ContentType string
	}
	if err := conn.Object(ssDest, item).CallWithContext(ctx, ssItem+".GetSecret", 0, session).Store(&secret); err != nil {
		return "", err
	}
	return string(secret.Value), nil
}

// unlocking is the process's one unlock prompt.
var unlocking = &unlocker{now: time.Now}

// unlocker shows one unlock prompt at a time, and none for a while after
// one was dismissed.
type unlocker struct {
	mu      sync.Mutex
	now     func() time.Time
	open    *prompt   // the prompt up now, or nil
	next    time.Time // no prompt before then
	backoff time.Duration
	prompts int // prompts shown
}

type prompt struct {
	done chan struct{} // closed when the prompt ends
	ok   bool          // it unlocked the keychain
}

// unlock asks the user to unlock item, or waits for the prompt that asks
// already; after a dismissed one, it says the keychain is locked.
func (u *unlocker) unlock(ctx context.Context, item dbus.ObjectPath) error {
	u.mu.Lock()
	p := u.open
	if p == nil {
		if wait := u.next.Sub(u.now()); wait > 0 {
			u.mu.Unlock()
			return &LockedError{Why: fmt.Sprintf("its unlock prompt was dismissed; llmkey asks again in %s, and reads the key as soon as it is unlocked", wait.Round(time.Second))}
		}
		p = &prompt{done: make(chan struct{})}
		u.open = p
		u.prompts++
		go u.prompt(item, p)
	}
	u.mu.Unlock()
	select {
	case <-p.done:
	case <-ctx.Done():
		return &LockedError{Why: "waiting for it to be unlocked at its prompt"}
	}
	if !p.ok {
		return &LockedError{Why: "its unlock prompt was dismissed (or could not be shown)"}
	}
	return nil
}

// unlocked notes that the keychain was found unlocked: should it be
// locked again, the next read may prompt at once.
func (u *unlocker) unlocked() {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.next, u.backoff = time.Time{}, 0
}

func (u *unlocker) prompt(item dbus.ObjectPath, p *prompt) {
	ok := promptUnlock(item)
	u.mu.Lock()
	defer u.mu.Unlock()
	if ok {
		u.next, u.backoff = time.Time{}, 0
	} else {
		u.backoff = min(max(2*u.backoff, promptBackoff), maxPromptBackoff)
		u.next = u.now().Add(u.backoff)
	}
	u.open, p.ok = nil, ok
	close(p.done)
}

// promptUnlock asks the Secret Service to unlock item, showing its
// prompt, and reports whether it was unlocked. A prompt unanswered
// within promptTimeout is taken down. The connection, and with it the
// signal's match and channel, ends with it.
func promptUnlock(item dbus.ObjectPath) bool {
	connCtx, cancel := context.WithTimeout(context.Background(), promptTimeout+5*time.Second)
	defer cancel()
	conn, err := sessionBus(connCtx)
	if err != nil {
		return false
	}
	defer conn.Close()
	var unlocked []dbus.ObjectPath
	var path dbus.ObjectPath
	if conn.Object(ssDest, ssPath).CallWithContext(connCtx, ssService+".Unlock", 0, []dbus.ObjectPath{item}).Store(&unlocked, &path) != nil {
		return false
	}
	if path == "/" {
		return len(unlocked) > 0
	}
	match := []dbus.MatchOption{dbus.WithMatchObjectPath(path), dbus.WithMatchInterface(ssPrompt), dbus.WithMatchMember("Completed")}
	if conn.AddMatchSignalContext(connCtx, match...) != nil {
		return false
	}
	defer conn.RemoveMatchSignalContext(connCtx, match...)
	signals := make(chan *dbus.Signal, 1)
	conn.Signal(signals)
	defer conn.RemoveSignal(signals)
	ok, err := awaitPrompt(connCtx, conn.Object(ssDest, path), signals)
	return ok && err == nil
}

// awaitPrompt shows the prompt and waits for its answer.
func awaitPrompt(connCtx context.Context, prompt dbus.BusObject, signals <-chan *dbus.Signal) (bool, error) {
	if err := prompt.CallWithContext(connCtx, ssPrompt+".Prompt", 0, "").Err; err != nil {
		return false, err
	}
	ctx, cancel := context.WithTimeout(connCtx, promptTimeout)
	defer cancel()
	for {
		select {
		case s, open := <-signals:
			if !open {
				return false, errors.New("the session bus connection closed")
			}
			if s.Path == prompt.Path() && s.Name == ssPrompt+".Completed" && len(s.Body) > 0 {
				dismissed, _ := s.Body[0].(bool)
				return !dismissed, nil
			}
		case <-ctx.Done():
			prompt.CallWithContext(connCtx, ssPrompt+".Dismiss", 0)
			return false, ctx.Err()
		}
	}
}

// SPDX-License-Identifier: MIT

package cli

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"unicode"

	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

// Terminal rules, written down once (after age's cmd/age/tui.go):
//   - secrets are read from the terminal with echo off, or from a pipe;
//     never from argv, never echoed, never printed back;
//   - prompts go to stderr, data (list, env, JSON) to stdout;
//   - messages go to stderr as "llmkey: ..." with a "hint:" line.

// maxSecret bounds what we accept as one secret on stdin.
const maxSecret = 64 << 10

var errInterrupted = &Error{Err: errors.New("interrupted"), Code: ExitInterrupted}

func isTerminal(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }

// readSecret reads one secret: typed without echo when in is a terminal,
// otherwise all of in (a pipe or file), surrounding white space trimmed.
func readSecret(in *os.File, errw io.Writer, prompt string) (string, error) {
	var raw []byte
	if isTerminal(in) {
		var err error
		raw, err = withTerminalRestored(in, func() ([]byte, error) {
			// Echo goes off before the prompt shows: a key pasted the
			// moment the prompt appears must not be echoed.
			fd := int(in.Fd())
			if old, err := unix.IoctlGetTermios(fd, ioctlGetTermios); err == nil {
				noEcho := *old
				noEcho.Lflag &^= unix.ECHO
				noEcho.Lflag |= unix.ICANON | unix.ISIG
				noEcho.Iflag |= unix.ICRNL
				if unix.IoctlSetTermios(fd, ioctlSetTermios, &noEcho) == nil {
					defer unix.IoctlSetTermios(fd, ioctlSetTermios, old)
				}
			}
			fmt.Fprint(errw, prompt)
			return readLine(fd)
		})
		fmt.Fprintln(errw)
		if errors.Is(err, io.EOF) { // Ctrl-D
			return "", &Error{Err: errors.New("no secret typed (Ctrl-D): nothing changed"), Hint: "paste the key at the prompt and press Enter, or pipe it in: printf %s \"$KEY\" | llmkey ...", Code: ExitFailure}
		}
		if err != nil {
			return "", err
		}
	} else {
		b, err := io.ReadAll(io.LimitReader(in, maxSecret+1))
		if err != nil {
			return "", fmt.Errorf("read secret from standard input: %w", err)
		}
		if len(b) > maxSecret {
			return "", fail("pipe in the key alone: printf %s \"$KEY\" | llmkey add ...", "standard input holds more than %d KiB; that is not one key", maxSecret>>10)
		}
		raw = b
	}
	return strings.TrimSpace(string(raw)), nil
}

// readLine reads one line the terminal's line discipline edited (echo
// off), without the newline; Ctrl-D on an empty line is io.EOF. Not
// term.ReadPassword: it spins on the zero-byte read Ctrl-D gives, and
// never returns.
func readLine(fd int) ([]byte, error) {
	var line []byte
	buf := make([]byte, 512)
	for {
		n, err := unix.Read(fd, buf)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if n == 0 { // Ctrl-D
			if len(line) > 0 {
				return line, nil
			}
			return nil, io.EOF
		}
		line = append(line, buf[:n]...)
		if i := bytes.IndexByte(line, '\n'); i >= 0 {
			return line[:i], nil
		}
		if len(line) > maxSecret {
			return nil, fail("paste the key alone", "more than %d KiB typed; that is not one key", maxSecret>>10)
		}
	}
}

// confirm asks a yes/no question on the terminal; the answer is no unless
// the person types y or yes.
func confirm(in *os.File, errw io.Writer, question string) (bool, error) {
	fmt.Fprintf(errw, "%s [y/N] ", question)
	line, err := withTerminalRestored(in, func() ([]byte, error) {
		s, err := bufio.NewReader(in).ReadString('\n')
		if errors.Is(err, io.EOF) { // Ctrl-D: no
			fmt.Fprintln(errw)
			err = nil
		}
		return []byte(s), err
	})
	if err != nil {
		return false, err
	}
	a := strings.ToLower(strings.TrimSpace(string(line)))
	return a == "y" || a == "yes", nil
}

// withTerminalRestored runs read and, if Ctrl-C arrives meanwhile, puts the
// terminal back as it was (echo on) before exiting: x/term turns echo off
// and a plain SIGINT would leave it off.
func withTerminalRestored(in *os.File, read func() ([]byte, error)) ([]byte, error) {
	fd := int(in.Fd())
	old, err := term.GetState(fd)
	if err != nil {
		return read()
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt)
	done := make(chan struct{})
	defer func() {
		signal.Stop(sig)
		close(done)
	}()
	go func() {
		select {
		case <-sig:
			term.Restore(fd, old)
			fmt.Fprintln(os.Stderr)
			PrintError(os.Stderr, errInterrupted)
			os.Exit(ExitInterrupted)
		case <-done:
		}
	}()
	return read()
}

// termSafe is text from elsewhere (a daemon's reason, a model name a
// client sent, an upstream's error code) made safe to print on a
// terminal: its control characters, which a terminal would obey, are
// shown as U+FFFD.
func termSafe(s string) string {
	if strings.IndexFunc(s, unicode.IsControl) < 0 {
		return s
	}
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return '\uFFFD'
		}
		return r
	}, s)
}

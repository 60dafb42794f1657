// SPDX-License-Identifier: MIT

package proxy

import (
	"context"
	"log/slog"
	"time"
)

// reqLog writes the log lines of one request, each with its provider,
// model, method and path. Unlike slog's With, it formats those only for a
// line written, not for every request up front, and holds no buffer for
// as long as a stream is open.
type reqLog struct {
	log                           *slog.Logger
	provider, model, method, path string
}

func (l *reqLog) Info(msg string, args ...any) { l.write(slog.LevelInfo, msg, args...) }
func (l *reqLog) Warn(msg string, args ...any) { l.write(slog.LevelWarn, msg, args...) }

func (l *reqLog) enabled(level slog.Level) bool { return l.log.Enabled(context.Background(), level) }

func (l *reqLog) write(level slog.Level, msg string, args ...any) {
	ctx := context.Background()
	if !l.log.Enabled(ctx, level) {
		return
	}
	// A record of our own: Logger.Log would also walk the stack for a
	// source position the handler does not print.
	r := slog.NewRecord(time.Now(), level, msg, 0)
	r.AddAttrs(slog.String("provider", l.provider), slog.String("model", l.model),
		slog.String("method", l.method), slog.String("path", l.path))
	r.Add(args...)
	l.log.Handler().Handle(ctx, r)
}

// Package wire owns everything that differs between the providers' wire
// formats (OpenAI chat and Responses, Anthropic, Gemini): the header a
// key travels in and its value, where a client's SDK puts its key, what
// an answer means for the key that got it (Classify: class, wait, when a
// quota returns), the error bodies and wait headers that say so, what the
// proxy reads of a request and how it asks a chat stream for its usage,
// the usage each answer reports (Meter), llmkey's own error answers in
// the provider's shape (WriteError), and the variables an SDK reads to
// find a provider, one row per built-in provider (env.go).
//
// A new kind is one change here plus the built-in provider table
// (state/providers.go). It imports rotate for the vocabulary of answers
// (rotate.Outcome) and state for kinds and usage counts.
package wire

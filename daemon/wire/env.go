package wire

// SDKEnv is what the official SDKs of provider read to find it: the
// variables that point them at the proxy (set) and those that would send
// them around it or to another credential (unset). Providers whose SDKs
// read nothing of their own get nothing here; every tool can still use
// LLMKEY_URL and LLMKEY_TOKEN.
func SDKEnv(provider, providerURL, token string) (set [][2]string, unset []string) {
	switch provider {
	case "openai":
		return [][2]string{{"OPENAI_BASE_URL", providerURL}, {"OPENAI_API_BASE", providerURL}, {"OPENAI_API_KEY", token}}, nil
	case "anthropic":
		return [][2]string{{"ANTHROPIC_BASE_URL", providerURL}, {"ANTHROPIC_API_KEY", token}}, []string{"ANTHROPIC_AUTH_TOKEN"}
	case "gemini":
		return [][2]string{{"GOOGLE_GEMINI_BASE_URL", providerURL}, {"GEMINI_API_KEY", token}}, []string{"GOOGLE_API_KEY"}
	}
	return nil, nil
}

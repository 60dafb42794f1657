package wire

// SDKEnv is what the official SDKs of provider read to find it: the
// variables that point them at the proxy (set) and those that would send
// them around it, or with another credential or organization (unset).
// Every tool can also use LLMKEY_URL and LLMKEY_TOKEN.
func SDKEnv(provider, providerURL, token string) (set [][2]string, unset []string) {
	switch provider {
	case "openai":
		// A client sends OPENAI_ORG_ID and OPENAI_PROJECT_ID as headers
		// that the proxy drops (a key's organization and project are the
		// keyfile's): cleared, they are not sent at all.
		return [][2]string{{"OPENAI_BASE_URL", providerURL}, {"OPENAI_API_BASE", providerURL}, {"OPENAI_API_KEY", token}},
			[]string{"OPENAI_ORG_ID", "OPENAI_ORGANIZATION", "OPENAI_PROJECT_ID", "OPENAI_PROJECT"}
	case "anthropic":
		// Some clients read ANTHROPIC_API_URL before ANTHROPIC_BASE_URL.
		return [][2]string{{"ANTHROPIC_BASE_URL", providerURL}, {"ANTHROPIC_API_KEY", token}},
			[]string{"ANTHROPIC_AUTH_TOKEN", "ANTHROPIC_API_URL"}
	case "gemini":
		// With GOOGLE_GENAI_USE_VERTEXAI the genai SDK and Gemini CLI go to
		// Vertex AI, whatever GOOGLE_GEMINI_BASE_URL says. The Vercel AI
		// SDK's Google provider reads GOOGLE_GENERATIVE_AI_API_KEY but no
		// base URL variable: with the token in it, it would send the token
		// to Google's own host, so it is cleared, and a client pointed at
		// the proxy in its code or file takes LLMKEY_TOKEN.
		return [][2]string{{"GOOGLE_GEMINI_BASE_URL", providerURL}, {"GEMINI_API_KEY", token}},
			[]string{"GOOGLE_API_KEY", "GOOGLE_GENAI_USE_VERTEXAI", "GOOGLE_GENERATIVE_AI_API_KEY"}
	case "groq", "openrouter", "mistral", "deepseek", "together", "xai":
		// Their SDKs read NAME_API_KEY, and those that can be pointed
		// elsewhere NAME_BASE_URL.
		name := map[string]string{"groq": "GROQ", "openrouter": "OPENROUTER", "mistral": "MISTRAL", "deepseek": "DEEPSEEK",
			"together": "TOGETHER", "xai": "XAI"}[provider]
		return [][2]string{{name + "_BASE_URL", providerURL}, {name + "_API_KEY", token}}, nil
	}
	return nil, nil
}

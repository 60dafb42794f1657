// SPDX-License-Identifier: MIT

package cli

import "fmt"

// Qwen Code: the OpenAI-compatible auth type, which reads OPENAI_BASE_URL
// and OPENAI_API_KEY from the environment at each start (exec sets both,
// so the file holds no port). Without an auth type it stops before any
// request.

var qwenAuth = []string{"security", "auth", "selectedType"}

const qwenNote = "Qwen Code's own default model is a Qwen model: name yours with qwen -m MODEL, OPENAI_MODEL, or model.name in its settings.json"

func applyQwen(data []byte, _ setupEnv) ([]byte, error) {
	return jsonSet(data, qwenAuth, `"openai"`)
}

func checkQwen(data []byte, _ setupEnv) []finding {
	if v, _ := jsonGet(data, qwenAuth); v != `"openai"` {
		return []finding{{fmt.Sprintf("Qwen Code's auth type is %s, not the OpenAI-compatible one that reads the variables exec sets", orNone(v)), "llmkey setup qwen"}}
	}
	return nil
}

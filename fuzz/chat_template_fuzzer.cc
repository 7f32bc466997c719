// Fuzzes the Jinja chat-template engine: the input is a template (parse, then render against a
// small conversation). Errors are fine; crashes, hangs and sanitizer reports are not.
#include <cstddef>
#include <cstdint>
#include <string>

#include "tokenizer/chat_template.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 8192) return 0;
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto tmpl = tokenfab::ChatTemplate::Create(text, "fuzz");
  if (!tmpl.ok()) return 0;
  static const tokenfab::OrderedJson messages = tokenfab::OrderedJson::parse(
      R"([{"role": "system", "content": "sys"}, {"role": "user", "content": "Hi é 😀"},
          {"role": "assistant", "content": "<think>x</think>ok", "tool_calls": [{"function": {"name": "f", "arguments": {"a": 1}}}]}])");
  tokenfab::ChatRenderOptions options;
  options.add_generation_prompt = true;
  (void)(*tmpl)->Render(messages, options, {{"bos_token", "<s>"}, {"eos_token", "</s>"}});
  return 0;
}

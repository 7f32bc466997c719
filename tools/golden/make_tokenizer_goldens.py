#!/usr/bin/env python3
"""Golden files for tokenfab's tokenizer and chat templates, made by the referee itself.

Runs where Python `tokenizers` and `transformers` are installed (the GPU machine). Reads the
real tokenizer files that scripts/setup.sh fetched into assets/tokenizers/<name>/ and writes
one JSON file per topic plus goldens.tar.gz (all of them) under $OUT (or --out):

  tokenize_<name>.json  for every corpus string: ids of encode(text, add_special_tokens=False)
                        and with add_special_tokens=True, decode(ids) with special tokens kept
                        and skipped, transformers' decode, and the DecodeStream chunks.
  chat_<name>.json      apply_chat_template renderings (tokenize=False and tokenize=True) of
                        the conversations below, with and without add_generation_prompt.
  templates.json        small templates exercising each Jinja construct, rendered through
                        transformers' own template environment (apply_chat_template with
                        chat_template=...), errors included.
  referee.txt           versions and the source of the transformers functions involved.

The corpus is built here, deterministically (fixed seed), and saved with the goldens, so the
tests need nothing but the JSON files.

  python3 tools/golden/make_tokenizer_goldens.py --assets assets/tokenizers --out "$OUT"
"""
import argparse
import inspect
import json
import os
import random
import sys
import tarfile
import tempfile

TOKENIZERS = ["qwen3", "llama3_1", "llama2"]

HAND_STRINGS = [
    "",
    " ",
    "Hello world",
    "Hello, world! How are you today?",
    " Hello world",
    "  leading two spaces",
    "trailing spaces   ",
    "The quick brown fox jumps over the lazy dog.",
    "I'm sure you'll like it; they've said we'd go. It's John's.",
    "I'M SURE YOU'LL LIKE IT; THEY'VE SAID WE'D GO. IT'S JOHN'S.",
    "don't DON'T Don'T dOn't",
    "'s 't 're 've 'm 'll 'd",
    "x'ſ y'ſt 'K 'ℓ",
    "12345678901234567890",
    "3.14159 2,718 1e-9 0x1F -42 +7 1_000_000",
    "Version v1.2.3-rc4 released on 2024-05-01T12:34:56Z",
    "a\tb\t\tc",
    "\t\tindented with tabs",
    "line1\nline2\n\nline4\n\n\n",
    "windows\r\nline\r\nendings\r\n",
    "mixed \r\n\t \n  \r  end",
    "\n\n\n",
    "   \n   ",
    "spaces    in     between",
    "word" + " " * 17 + "word",
    "trailing newline\n",
    "def foo(x):\n    return x * 2  # double\n",
    "for (int i = 0; i < n; ++i) {\n\tsum += a[i];\n}",
    "#include <stdio.h>\nint main(void) { printf(\"%d\\n\", 42); return 0; }",
    "SELECT * FROM users WHERE id = 1 AND name LIKE '%bob%';",
    "<html><body class=\"x\">Hi &amp; bye</body></html>",
    "{\"key\": [1, 2.5, true, null], \"nested\": {\"a\": \"b\"}}",
    "https://example.com/path?query=1&other=two#frag",
    "user@example.com, +1 (555) 123-4567",
    "!!!???...,,,;;;:::",
    "--- === *** ___ ~~~ ``` ''' \"\"\"",
    "$100 €200 £300 ¥400 ₹500",
    "你好，世界！今天天气很好。",
    "我爱北京天安门",
    "中文 English 混合 text 123",
    "日本語のテキストです。カタカナとひらがな。",
    "東京は日本の首都です",
    "한국어 텍스트입니다. 안녕하세요!",
    "مرحبا بالعالم! كيف حالك؟",
    "العربية ١٢٣ ٤٥٦",
    "Привет, мир! Как дела?",
    "Съешь же ещё этих мягких французских булок",
    "Ελληνικά γράμματα αβγ",
    "עברית שלום",
    "हिन्दी भाषा नमस्ते",
    "ภาษาไทย สวัสดี",
    "Tiếng Việt có dấu: Xin chào",
    "Ünïcödé àéîõü ÀÉÎÕÜ ß ẞ",
    "e\u0301 a\u0300 o\u0308 n\u0303",
    "\u00e9 vs e\u0301",
    "\u1e9b\u0323 \u212b \u2126 \u0344",
    "\u1100\u1161\u11a8 \uac00\u11a8",
    "\ufb01 \ufb02 \u2460 \u00bd \u2075 \uff21\uff22\uff23",
    "😀 😃 😄 😁",
    "👨‍👩‍👧‍👦 family",
    "👩🏽‍💻 coder 🏳️‍🌈 flag",
    "🇺🇸🇫🇷🇯🇵",
    "❤️ ✨ ☕ ⚡",
    "emoji👍without👍spaces",
    "\u200b zero\u200bwidth \u200d joiner \ufeff bom",
    "nbsp\u00a0here and\u3000ideographic space",
    "en\u2002em\u2003thin\u2009hair\u200a",
    "next\u0085line and\u2028line\u2029para",
    "\u000b vertical tab \u000c form feed",
    "control \u0001\u0002\u007f chars",
    "<|im_start|>user\nhi<|im_end|>",
    "<|endoftext|>",
    "text<|endoftext|>more text",
    "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are helpful.<|eot_id|>",
    "<|eot_id|><|eot_id|>",
    "<|reserved_special_token_5|>",
    "<s> hello </s>",
    "<s>hello</s>",
    "<unk>",
    "<think>\nreasoning\n</think>\n\nanswer",
    "<tool_call>\n{\"name\": \"f\", \"arguments\": {}}\n</tool_call>",
    "< |im_start| > not special",
    "<|im_start|",
    "<<|im_end|>>",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "abcabcabcabcabcabcabcabcabcabcabcabc",
    "ÄÄÄÄÄÄÄÄ",
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
    "CamelCaseIdentifierWithNumbers123AndMore",
    "snake_case_identifier_with_numbers_123",
    "a",
    "A",
    "1",
    ".",
    "\n",
    "\t",
    "\r",
    "\r\n",
    "ſ",
    "Ⅻ ⅻ ① ² ¾",
    "9️⃣ #️⃣",
    "\U0001d400\U0001d401 math bold",
    "\U00020000\U0002a6d6 ext-B",
    "\U000e0041 tag char",
    "\uE000 private use \U000F0000",
    "\ufffd replacement",
    "tab\tand\u00a0nbsp\u00a0mixed\t",
    "question? exclamation! period. comma, colon: semicolon;",
    "(parens) [brackets] {braces} <angles>",
    "Mr. Smith's car isn't here; it's Mrs. Jones'.",
    " 's  'll",
    "?\n!\n.\n",
    "...\n\n...",
    "a\n\n\nb\r\n\r\nc",
    "     ",
    " \t \n",
    "end with space ",
    "x" * 300,
    "word " * 60,
]

ATOMS = [
    "the", "The", "HELLO", "world", "you'll", "it's", "I'M", "we'D", "don't", "'s", "'RE", "ſ",
    " ", "  ", "   ", "\t", "\n", "\n\n", "\r\n", "\r", " \n", "\u00a0", "\u3000", "\u2003",
    "0", "7", "42", "123", "2024", "31415926", "3.5", "1,000", "١٢", "²", "½", "Ⅷ",
    "!", "?", ".", ",", "...", "-", "--", "_", "/", "\\", "\"", "'", "`", "(", ")", "[", "]", "{",
    "}", "<", ">", "@", "#", "$", "%", "^", "&", "*", "+", "=", "|", "~", ";", ":",
    "你好", "世界", "中", "日本語", "カタカナ", "ひらがな", "한국어", "안녕", "مرحبا", "عالم",
    "Привет", "мир", "Ελλάδα", "שלום", "नमस्ते", "ไทย", "Việt",
    "e\u0301", "a\u0308", "\u0301", "\u0327", "n\u0303o",
    "😀", "👍", "👍🏽", "👨‍👩‍👧", "🏳️‍🌈", "🇩🇪", "❤️", "\u200d", "\u200b", "\ufe0f",
    "<|im_start|>", "<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|begin_of_text|>",
    "<think>", "</think>", "<s>", "</s>", "<|", "|>",
    "def", "return", "x=1", "foo()", "a_b", "CamelCase", "http://x.y/z", "==", "!=", "->", "=>",
]


def random_strings(n, seed):
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        k = rng.randint(1, 14)
        out.append("".join(rng.choice(ATOMS) for _ in range(k)))
    return out


# Invalid UTF-8 inputs: the referee sees them as Python decodes them with errors="replace"
# (the same maximal-subpart replacement as Rust's String::from_utf8_lossy).
INVALID_UTF8 = [
    b"abc\xffdef",
    b"\xc3",
    b"caf\xc3",
    b"\xe4\xbd",
    b"\xe4\xbd\xa0\xe5",
    b"\xed\xa0\x80 surrogate",
    b"\xf0\x9f\x98",
    b"\xf4\x90\x80\x80 too big",
    b"\xc0\xaf overlong",
    b"\x80\x80\x80",
    b"ok \xfe\xff ok",
]


def corpus():
    strings = list(HAND_STRINGS) + random_strings(200, seed=20240601)
    return strings


CONVERSATIONS = [
    {"name": "single_user", "messages": [{"role": "user", "content": "Hello!"}]},
    {"name": "system_user", "messages": [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "What is 2+2?"}]},
    {"name": "multi_turn", "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello! How can I help?"},
        {"role": "user", "content": "Tell me a joke about cats."}]},
    {"name": "whitespace_content", "messages": [
        {"role": "user", "content": "  padded with spaces and newlines \n\n"},
        {"role": "assistant", "content": "\n  answer  \n"},
        {"role": "user", "content": "\tTabs\tinside\t"}]},
    {"name": "unicode", "messages": [
        {"role": "system", "content": "Réponds en français. 日本語もOK。"},
        {"role": "user", "content": "Привет 👋🏽 مرحبا 你好 e\u0301"}]},
    {"name": "special_token_text_in_content", "messages": [
        {"role": "user", "content": "Can you explain <|im_end|> and <|eot_id|> tokens?"}]},
    {"name": "thinking_history", "messages": [
        {"role": "user", "content": "What is 3*7?"},
        {"role": "assistant", "content": "<think>\n3 times 7 is 21.\n</think>\n\n21"},
        {"role": "user", "content": "And 4*5?"}]},
    {"name": "reasoning_content_field", "messages": [
        {"role": "user", "content": "Q1"},
        {"role": "assistant", "content": "A1", "reasoning_content": "thinking about Q1"},
        {"role": "user", "content": "Q2"},
        {"role": "assistant", "content": "A2", "reasoning_content": "thinking about Q2"}]},
    {"name": "tools", "tools": [
        {"type": "function", "function": {
            "name": "get_weather", "description": "Get the weather for a city",
            "parameters": {"type": "object", "properties": {
                "city": {"type": "string", "description": "City name, e.g. Zürich"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
                "required": ["city"]}}}],
     "messages": [
        {"role": "system", "content": "You can call tools."},
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": "", "tool_calls": [
            {"type": "function", "function": {"name": "get_weather",
                                              "arguments": {"city": "Paris", "unit": "celsius"}}}]},
        {"role": "tool", "content": "{\"temp\": 21, \"sky\": \"clear\"}"},
        {"role": "tool", "content": "second result"},
        {"role": "assistant", "content": "It is 21°C and clear in Paris."},
        {"role": "user", "content": "Thanks!"}]},
    {"name": "tool_call_string_arguments", "tools": [
        {"type": "function", "function": {"name": "search", "description": "Web search",
                                          "parameters": {"type": "object", "properties": {
                                              "q": {"type": "string"}}}}}],
     "messages": [
        {"role": "user", "content": "Search for tokenfab"},
        {"role": "assistant", "content": "Let me search.", "tool_calls": [
            {"type": "function", "function": {"name": "search",
                                              "arguments": "{\"q\": \"tokenfab\"}"}},
            {"type": "function", "function": {"name": "search",
                                              "arguments": {"q": "tokenfab docs", "n": 3}}}]},
        {"role": "tool", "content": "<tool_response>ok</tool_response>"}]},
    {"name": "user_first_long", "messages": [
        {"role": "user", "content": "Write a haiku.\nAbout the sea.\n"},
        {"role": "assistant", "content": "Waves fold into foam\nsalt wind carries gull voices\nthe tide keeps its time"},
        {"role": "user", "content": "Another, about mountains."},
        {"role": "assistant", "content": "Stone shoulders in cloud"},
        {"role": "user", "content": "Thanks"}]},
]

# (name, kwargs) variants applied to every conversation.
CHAT_VARIANTS = [
    ("plain", {"add_generation_prompt": False}),
    ("gen", {"add_generation_prompt": True}),
    ("gen_no_think", {"add_generation_prompt": True, "enable_thinking": False}),
]

MISTRAL_STYLE_TEMPLATE = (
    "{%- if messages[0]['role'] == 'system' %}\n"
    "    {%- set system_message = messages[0]['content'] %}\n"
    "    {%- set loop_messages = messages[1:] %}\n"
    "{%- else %}\n"
    "    {%- set loop_messages = messages %}\n"
    "{%- endif %}\n\n"
    "{{- bos_token }}\n"
    "{%- for message in loop_messages %}\n"
    "    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}\n"
    "        {{- raise_exception('After the optional system message, conversation roles must alternate user/assistant/user/assistant/...') }}\n"
    "    {%- endif %}\n"
    "    {%- if message['role'] == 'user' %}\n"
    "        {%- if loop.first and system_message is defined %}\n"
    "            {{- ' [INST] ' + system_message + '\\n\\n' + message['content'] + ' [/INST]' }}\n"
    "        {%- else %}\n"
    "            {{- ' [INST] ' + message['content'] + ' [/INST]' }}\n"
    "        {%- endif %}\n"
    "    {%- elif message['role'] == 'assistant' %}\n"
    "        {{- ' ' + message['content'] + eos_token}}\n"
    "    {%- else %}\n"
    "        {{- raise_exception('Only user and assistant roles are supported, with the exception of an initial optional system message!') }}\n"
    "    {%- endif %}\n"
    "{%- endfor %}\n"
)

# Templates that exercise one construct each; rendered with messages M plus the extra kwargs.
M = [{"role": "system", "content": "sys"}, {"role": "user", "content": "Hi there"},
     {"role": "assistant", "content": " Hello! "}, {"role": "user", "content": "Bye"}]
TEMPLATES = [
    ("text_only", "plain text\n", {}),
    ("trim_blocks", "{% if true %}\nyes\n{% endif %}\nend", {}),
    ("lstrip_blocks", "  {% if true %}\n  x\n  {% endif %}\n", {}),
    ("whitespace_control", "a  {{- 'b' -}}  c {%- if true -%} d {%- endif -%}  e", {}),
    ("comment", "a{# comment #}b\n{#- x -#}  c", {}),
    ("raw", "{% raw %}{{ not rendered }}{% endraw %}", {}),
    ("for_loop_vars", "{% for m in messages %}{{ loop.index }}/{{ loop.length }}:{{ loop.index0 }}:{{ loop.revindex }}:{{ loop.revindex0 }}:{{ loop.first }}:{{ loop.last }} {% endfor %}", {}),
    ("for_else", "{% for x in [] %}{{ x }}{% else %}empty{% endfor %}", {}),
    ("for_filter", "{% for m in messages if m.role == 'user' %}{{ m.content }};{% endfor %}", {}),
    ("for_unpack", "{% for k, v in {'a': 1, 'b': 2}.items() %}{{ k }}={{ v }},{% endfor %}", {}),
    ("loop_cycle_prev", "{% for x in [1,2,3] %}{{ loop.cycle('a','b') }}{{ loop.previtem if not loop.first else '-' }}{{ loop.nextitem if not loop.last else '-' }} {% endfor %}", {}),
    ("nested_loops", "{% for a in [1,2] %}{% for b in ['x','y'] %}{{ a }}{{ b }}{{ loop.index }} {% endfor %}{{ loop.index }}|{% endfor %}", {}),
    ("break_continue", "{% for x in range(10) %}{% if x == 2 %}{% continue %}{% endif %}{% if x > 5 %}{% break %}{% endif %}{{ x }}{% endfor %}", {}),
    ("if_elif_else", "{% for x in [1, 2, 3] %}{% if x == 1 %}one{% elif x == 2 %}two{% else %}many{% endif %} {% endfor %}", {}),
    ("set_scoping", "{% set x = 1 %}{% for i in [1,2] %}{% set x = x + i %}{{ x }}{% endfor %} after={{ x }}", {}),
    ("namespace", "{% set ns = namespace(count=0, names=[]) %}{% for m in messages %}{% set ns.count = ns.count + 1 %}{% endfor %}{{ ns.count }}", {}),
    ("set_block", "{% set greeting %}Hello {{ 'World' }}!{% endset %}[{{ greeting }}]", {}),
    ("macro", "{% macro render(m, prefix='> ') %}{{ prefix }}{{ m.role }}: {{ m.content }}{% endmacro %}{% for m in messages %}{{ render(m) }}|{{ render(m, prefix='* ') }}\n{% endfor %}", {}),
    ("macro_kwargs_default", "{% macro f(a, b=2, c='z') %}{{ a }}{{ b }}{{ c }}{% endmacro %}{{ f(1) }} {{ f(1, 3) }} {{ f(1, c='q') }}", {}),
    ("filters_string", "{{ '  Hi There  ' | trim }}|{{ 'abc' | upper }}|{{ 'ABC' | lower }}|{{ 'hello world' | title }}|{{ 'hello' | capitalize }}|{{ 'a-b-c' | replace('-', '+') }}|{{ 'abc' | length }}", {}),
    ("filters_list", "{{ [3,1,2] | sort | join(',') }}|{{ [1,2,3] | first }}|{{ [1,2,3] | last }}|{{ [1,2,3] | length }}|{{ [1,2,3] | reverse | list }}|{{ ['a','b'] | join }}|{{ [1,2,3] | sum }}|{{ [1,5,3] | max }}|{{ [4,2,6] | min }}", {}),
    ("filter_default", "{{ undefined_var | default('dflt') }}|{{ none_var | default('x') }}|{{ '' | default('empty', true) }}|{{ 'set' | d('no') }}", {"none_var": None}),
    ("filter_map_select", "{{ messages | map(attribute='role') | join(',') }}|{{ messages | selectattr('role', 'equalto', 'user') | map(attribute='content') | list }}|{{ messages | rejectattr('role', 'eq', 'user') | list | length }}|{{ [1,2,3,4] | select('odd') | list }}|{{ [1,2,3,4] | reject('even') | list }}", {}),
    ("filter_tojson", "{{ tools | tojson }}\n{{ tools[0] | tojson(indent=2) }}\n{{ {'b': 1, 'a': [1, 2.5, 'x', none, true]} | tojson }}\n{{ 'quote\"s & <tags> é 😀' | tojson }}\n{{ {'z': 1, 'a': 2} | tojson(sort_keys=true) }}", {"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {"x": {"type": "integer"}}}}}]}),
    ("filter_misc", "{{ 3.7 | int }}|{{ '42' | int + 1 }}|{{ 2 | float }}|{{ 42 | string + 'x' }}|{{ -3 | abs }}|{{ 2.567 | round(2) }}|{{ 'a\nb' | indent(2) }}|{{ {'b':1,'a':2} | dictsort }}|{{ [1,2,3,4,5] | batch(2) | list }}|{{ 'x' | center(5) }}|{{ [1,[2,3]] | list }}|{{ 'abc' | list }}|{{ [1,1,2] | unique | list }}", {}),
    ("filter_items", "{% for k, v in {'x': 1, 'y': [2]} | items %}{{ k }}:{{ v }};{% endfor %}", {}),
    ("string_methods", "{{ 'Hello'.startswith('He') }}|{{ 'Hello'.endswith('lo') }}|{{ '  x  '.strip() }}|{{ 'xxhixx'.strip('x') }}|{{ '  x'.lstrip() }}|{{ 'x\n\n'.rstrip('\n') }}|{{ 'a,b,c'.split(',') }}|{{ 'a b  c'.split() }}|{{ 'abc'.upper() }}|{{ 'ABC'.lower() }}|{{ 'a-b'.replace('-', '_') }}|{{ 'hello world'.title() }}|{{ 'abc'.find('c') }}|{{ 'a b'.split(' ', 1) }}|{{ 'x'.join(['1','2']) }}|{{ 'Hi {}'.format('you') }}|{{ 'abc'.capitalize() }}|{{ 'a1'.isalnum() }}|{{ '12'.isdigit() }}|{{ 'abcabc'.count('b') }}|{{ 'abc'.rfind('x') }}|{{ 'a b c'.rsplit(' ', 1) }}", {}),
    ("string_index_slice", "{{ 'hello'[1] }}|{{ 'hello'[1:3] }}|{{ 'hello'[::-1] }}|{{ 'hello'[-2:] }}|{{ [1,2,3,4][1:] }}|{{ [1,2,3,4][:-1] }}|{{ [1,2,3,4][::2] }}|{{ messages[-1].content }}", {}),
    ("dict_methods", "{% set d = {'a': 1, 'b': 2} %}{{ d.get('a') }}|{{ d.get('z', 'none') }}|{{ d.keys() | list }}|{{ d.values() | list }}|{{ d['b'] }}|{{ d.b }}|{{ 'a' in d }}|{{ d.items() | list }}", {}),
    ("tests", "{{ x is defined }}|{{ y is defined }}|{{ y is undefined }}|{{ n is none }}|{{ x is string }}|{{ 3 is number }}|{{ 3 is integer }}|{{ 3.0 is float }}|{{ [1] is iterable }}|{{ [1] is sequence }}|{{ {} is mapping }}|{{ 'a' is mapping }}|{{ 4 is even }}|{{ 3 is odd }}|{{ 6 is divisibleby 3 }}|{{ true is boolean }}|{{ x is not none }}|{{ 'abc' is lower }}|{{ 'ABC' is upper }}|{{ f is callable }}|{{ 1 is eq 1 }}|{{ 2 is gt 1 }}|{{ true is true }}|{{ false is false }}|{{ 'a' in 'abc' }}|{{ 2 is in [1,2] }}", {"x": "s", "n": None, "f": None}),
    ("operators", "{{ 7 // 2 }}|{{ 7 % 3 }}|{{ 2 ** 10 }}|{{ 7 / 2 }}|{{ 1 + 2 * 3 }}|{{ (1 + 2) * 3 }}|{{ 'a' ~ 1 ~ none }}|{{ 'ab' * 3 }}|{{ [1] + [2] }}|{{ not true }}|{{ true and false or true }}|{{ 1 < 2 < 3 }}|{{ 1 == 1.0 }}|{{ 'a' != 'b' }}|{{ 3 > 2 >= 2 }}|{{ -(-3) }}|{{ 1 if false else 2 }}|{{ 'x' if true }}|{{ 10 - 2 - 3 }}|{{ 2 ** 3 ** 2 }}|{{ 0.1 + 0.2 }}|{{ 1e3 }}|{{ 7 / 7 }}|{{ -7 // 2 }}|{{ -7 % 3 }}", {}),
    ("literals", "{{ [1, 'two', 3.0, true, none, [4]] }}|{{ {'a': 1, 'b': 'x'} }}|{{ (1, 2) }}|{{ \"dq 'sq'\" }}|{{ 'sq \"dq\"' }}|{{ 'esc\\ttab\\nnl \\'q\\' \\\\' }}|{{ True }}|{{ None }}|{{ none }}|{{ 1.50 }}|{{ 100000000000000000000 }}|{{ 1.0e-7 }}|{{ 12345678.9 }}", {}),
    ("print_values", "{{ messages[0] }}|{{ 1.0 }}|{{ 3 / 2 }}|{{ true }}|{{ none }}|{{ [none, true, 'a\"b', \"c'd\"] }}|{{ undefined_thing }}|{{ {'k': {'n': [1]}} }}", {}),
    ("undefined_attr", "[{{ messages[0].nonexistent }}][{{ messages[0]['nonexistent'] }}][{{ messages[0].nonexistent is defined }}]", {}),
    ("undefined_attr_of_undefined", "[{{ missing.attr is defined }}]", {}),
    ("bos_eos_vars", "{{ bos_token }}|{{ eos_token }}|{{ add_generation_prompt }}", {}),
    ("raise_exception", "{% if messages | length > 1 %}{{ raise_exception('Too many messages: ' ~ messages|length) }}{% endif %}", {}),
    ("unknown_filter", "{{ 'x' | no_such_filter }}", {}),
    ("syntax_error", "line one\n{% if %}\n", {}),
    ("unclosed_block", "{% for m in messages %}{{ m.role }}", {}),
    ("mistral_style", MISTRAL_STYLE_TEMPLATE, {}),
    ("mistral_style_bad_roles", MISTRAL_STYLE_TEMPLATE, {"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]}),
    ("content_list", "{% for m in messages %}{% if m.content is string %}{{ m.content }}{% else %}{% for c in m.content %}{% if c.type == 'text' %}{{ c.text }}{% endif %}{% endfor %}{% endif %}|{% endfor %}", {"messages": [{"role": "user", "content": [{"type": "text", "text": "part1"}, {"type": "image"}, {"type": "text", "text": "part2"}]}, {"role": "assistant", "content": "plain"}]}),
    ("generation_tag", "{% for m in messages %}{% if m.role == 'assistant' %}{% generation %}{{ m.content }}{% endgeneration %}{% else %}{{ m.content }}{% endif %}|{% endfor %}", {}),
    ("string_concat_types", "{{ 'n=' ~ 5 }}|{{ 'a' + 'b' }}|{{ messages | length ~ ' msgs' }}", {}),
    ("in_operator", "{{ 'user' in messages | map(attribute='role') | list }}|{{ 'zz' not in 'abc' }}|{{ 1 in [1,2] }}|{{ 'k' in {'k': 1} }}", {}),
    ("whitespace_mixed", "{%- for m in messages -%}\n  {{ m.role }}\n  {%- if not loop.last %}, {% endif -%}\n{%- endfor %}\n\n  tail  \n", {}),
    ("lstrip_tabs_and_expr", "\t{% if true %}A{% endif %}\n\t{{ 'B' }}\n    {%+ if true %}C{% endif %}\n", {}),
    ("filter_chain_args", "{{ messages | map(attribute='content') | map('trim') | map('upper') | join(' / ') }}", {}),
    ("strftime_now", "{{ strftime_now('%Y') | length }}", {}),
    ("slicing_loop_messages", "{% for m in messages[1:] %}{{ m.role[0] }}{% endfor %}|{{ messages[1:] | length }}", {}),
    ("integer_division_and_bool", "{{ (messages | length) // 2 }}|{{ (messages | length) is even }}|{{ true + 1 }}", {}),
    ("if_expression_chain", "{{ 'a' if messages[0].role == 'system' else 'b' if false else 'c' }}", {}),
    ("tojson_on_string_and_numbers", "{{ 'x' | tojson }}{{ 1.5 | tojson }}{{ 10 | tojson }}{{ none | tojson }}{{ [1.0, 2] | tojson }}{{ {'a':'\\n'} | tojson }}", {}),
]


def run_tokenize(name, path, strings, out):
    from tokenizers import Tokenizer
    from tokenizers.decoders import DecodeStream
    import transformers
    tok = Tokenizer.from_file(os.path.join(path, "tokenizer.json"))
    try:
        hf = transformers.AutoTokenizer.from_pretrained(path)
    except Exception as e:  # noqa: BLE001
        print(f"{name}: transformers tokenizer failed: {e}", file=sys.stderr)
        hf = None
    cases = []
    for text in strings:
        enc = tok.encode(text, add_special_tokens=False)
        ids = enc.ids
        case = {
            "text": text,
            "ids": ids,
            "ids_with_special": tok.encode(text, add_special_tokens=True).ids,
            "decoded": tok.decode(ids, skip_special_tokens=False),
            "decoded_skip_special": tok.decode(ids, skip_special_tokens=True),
        }
        stream = DecodeStream(skip_special_tokens=False)
        chunks = []
        for i in ids:
            chunks.append(stream.step(tok, i))
        case["stream"] = chunks
        if hf is not None:
            case["hf_ids"] = hf.encode(text, add_special_tokens=False)
            case["hf_decoded"] = hf.decode(ids)
            case["hf_decoded_skip_special"] = hf.decode(ids, skip_special_tokens=True)
        cases.append(compact_case(case))
    invalid = []
    for raw in INVALID_UTF8:
        text = raw.decode("utf-8", errors="replace")
        invalid.append({"bytes_hex": raw.hex(), "text": text,
                        "ids": tok.encode(text, add_special_tokens=False).ids})
    # Decoding ids that do not form valid UTF-8 (a lone lead byte, a lone continuation byte).
    byte_ids = {}
    for b in (0xC3, 0xA9, 0xE4, 0xF0, 0x80):
        for candidate in (f"<0x{b:02X}>", None):
            if candidate is not None:
                tid = tok.token_to_id(candidate)
            else:
                table = bytes_to_unicode()
                tid = tok.token_to_id(table[b])
            if tid is not None:
                byte_ids[f"{b:02X}"] = tid
                break
    odd = []
    for seq in (["C3"], ["C3", "A9"], ["E4"], ["F0", "80"], ["80", "C3"]):
        ids = [byte_ids[b] for b in seq if b in byte_ids]
        if len(ids) != len(seq):
            continue
        stream = DecodeStream(skip_special_tokens=False)
        odd.append({"ids": ids, "decoded": tok.decode(ids, skip_special_tokens=False),
                    "stream": [stream.step(tok, i) for i in ids]})
    with open(os.path.join(out, f"tokenize_{name}.json"), "w", encoding="utf-8") as f:
        json.dump({"tokenizer": name, "cases": cases, "invalid_utf8": invalid,
                   "odd_byte_decodes": odd}, f, ensure_ascii=False, separators=(",", ":"))
    return hf


def compact_case(case):
    """Drops what is implied, to keep the committed goldens small: transformers' results when
    they agree with `tokenizers` (hf_agrees records it), ids_with_special when equal to ids,
    decoded when equal to the input text, decoded_skip_special when equal to decoded."""
    out = {"text": case["text"], "ids": case["ids"]}
    if case["ids_with_special"] != case["ids"]:
        out["ids_with_special"] = case["ids_with_special"]
    if case["decoded"] != case["text"]:
        out["decoded"] = case["decoded"]
    if case["decoded_skip_special"] != case["decoded"]:
        out["decoded_skip_special"] = case["decoded_skip_special"]
    out["stream"] = case["stream"]
    if "hf_ids" in case:
        agrees = (case["hf_ids"] == case["ids"] and case["hf_decoded"] == case["decoded"] and
                  case["hf_decoded_skip_special"] == case["decoded_skip_special"])
        out["hf_agrees"] = agrees
        if not agrees:
            for k in ("hf_ids", "hf_decoded", "hf_decoded_skip_special"):
                out[k] = case[k]
    return out


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


def run_chat(name, hf, out):
    results = []
    for conv in CONVERSATIONS:
        for variant, kwargs in CHAT_VARIANTS:
            entry = {"conversation": conv["name"], "variant": variant, "kwargs": kwargs}
            try:
                extra = dict(kwargs)
                if "tools" in conv:
                    extra["tools"] = conv["tools"]
                entry["prompt"] = hf.apply_chat_template(conv["messages"], tokenize=False, **extra)
                ids = hf.apply_chat_template(conv["messages"], tokenize=True, **extra)
                if isinstance(ids, dict) or hasattr(ids, "keys"):
                    ids = ids["input_ids"]
                entry["ids"] = list(ids)
            except Exception as e:  # noqa: BLE001
                entry["error"] = f"{type(e).__name__}: {e}"
            results.append(entry)
    with open(os.path.join(out, f"chat_{name}.json"), "w", encoding="utf-8") as f:
        json.dump({"tokenizer": name, "conversations": CONVERSATIONS, "results": results}, f,
                  ensure_ascii=False, separators=(",", ":"))


def run_templates(hf, out):
    results = []
    for name, template, extra in TEMPLATES:
        kwargs = dict(extra)
        messages = kwargs.pop("messages", M)
        entry = {"name": name, "template": template, "messages": messages, "kwargs": kwargs}
        try:
            entry["output"] = hf.apply_chat_template(messages, chat_template=template, tokenize=False,
                                                     add_generation_prompt=True, bos_token="<s>",
                                                     eos_token="</s>", **kwargs)
        except Exception as e:  # noqa: BLE001
            entry["error"] = f"{type(e).__name__}: {e}"
        results.append(entry)
    with open(os.path.join(out, "templates.json"), "w", encoding="utf-8") as f:
        json.dump({"results": results}, f, ensure_ascii=False, indent=1)


def write_referee(out):
    import tokenizers
    import transformers
    lines = [f"python {sys.version}", f"tokenizers {tokenizers.__version__}",
             f"transformers {transformers.__version__}"]
    try:
        import jinja2
        lines.append(f"jinja2 {jinja2.__version__}")
    except ImportError:
        pass
    import transformers.utils.chat_template_utils as ctu
    lines.append("\n==== chat_template_utils.py\n" + inspect.getsource(ctu))
    try:
        import transformers.tokenization_utils_base as tub
        src = inspect.getsource(tub.PreTrainedTokenizerBase.apply_chat_template)
        lines.append("\n==== PreTrainedTokenizerBase.apply_chat_template\n" + src)
        for fn in ("decode", "_decode", "clean_up_tokenization", "convert_tokens_to_string"):
            if hasattr(tub.PreTrainedTokenizerBase, fn):
                lines.append(f"\n==== PreTrainedTokenizerBase.{fn}\n" +
                             inspect.getsource(getattr(tub.PreTrainedTokenizerBase, fn)))
    except Exception as e:  # noqa: BLE001
        lines.append(f"(tokenization_utils_base source unavailable: {e})")
    for mod_name in ("transformers.tokenization_utils_tokenizers",
                     "transformers.tokenization_utils_fast"):
        try:
            mod = __import__(mod_name, fromlist=["x"])
            lines.append(f"\n==== {mod_name}\n" + inspect.getsource(mod))
            break
        except Exception:  # noqa: BLE001
            continue
    with open(os.path.join(out, "referee.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--assets", default="assets/tokenizers")
    ap.add_argument("--out", default=os.environ.get("OUT", "out"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    staging = tempfile.mkdtemp(prefix="goldens_")  # only the tarball goes to --out
    strings = corpus()
    write_referee(staging)
    hf_any = None
    for name in TOKENIZERS:
        path = os.path.join(args.assets, name)
        if not os.path.exists(os.path.join(path, "tokenizer.json")):
            sys.exit(f"missing {path}/tokenizer.json (run scripts/setup.sh)")
        hf = run_tokenize(name, path, strings, staging)
        if hf is not None and getattr(hf, "chat_template", None):
            run_chat(name, hf, staging)
        if name == "qwen3":
            hf_any = hf
    run_templates(hf_any, staging)
    with tarfile.open(os.path.join(args.out, "goldens.tar.gz"), "w:gz") as tar:
        tar.add(staging, arcname="goldens")
    print("wrote", sorted(os.listdir(staging)))


if __name__ == "__main__":
    main()

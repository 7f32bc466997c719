// End-to-end checks of `tokenfab serve` through the official `openai` npm client.
// Run by server_e2e_test.cc with TOKENFAB_URL (http://127.0.0.1:PORT/v1), TOKENFAB_API_KEY,
// TOKENFAB_MODEL and OPENAI_MODULE (the package's directory, fetched by scripts/setup.sh).
// Prints one line per check and "N passed, M failed"; exits non-zero on any failure.
import assert from 'node:assert/strict';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const { default: OpenAI } = await import(pathToFileURL(path.join(process.env.OPENAI_MODULE, 'index.mjs')).href);
const baseURL = process.env.TOKENFAB_URL;
const model = process.env.TOKENFAB_MODEL;
const client = new OpenAI({ baseURL, apiKey: process.env.TOKENFAB_API_KEY, maxRetries: 0, timeout: 60000 });

let passed = 0, failed = 0;
async function check(name, fn) {
  try {
    await fn();
    passed++;
    console.log(`ok   ${name}`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${name}: ${e && e.stack ? e.stack : e}`);
  }
}

const messages = [{ role: 'system', content: 'You are terse.' }, { role: 'user', content: 'Say hello to the tests.' }];

await check('models lists the served model', async () => {
  const list = await client.models.list();
  assert.deepEqual(list.data.map((m) => m.id), [model]);
});

let greedyText = '';
await check('chat completion, greedy, with usage', async () => {
  const r = await client.chat.completions.create({ model, messages, max_tokens: 12, temperature: 0 });
  assert.equal(r.object, 'chat.completion');
  assert.equal(r.choices.length, 1);
  assert.equal(r.choices[0].message.role, 'assistant');
  assert.equal(typeof r.choices[0].message.content, 'string');
  assert.ok(['length', 'stop'].includes(r.choices[0].finish_reason));
  assert.ok(r.usage.prompt_tokens > 10);
  assert.ok(r.usage.completion_tokens >= 1 && r.usage.completion_tokens <= 12);
  assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
  greedyText = r.choices[0].message.content;
  // Greedy is deterministic, and the second time the prompt comes from the prefix cache.
  const again = await client.chat.completions.create({ model, messages, max_tokens: 12, temperature: 0 });
  assert.equal(again.choices[0].message.content, greedyText);
  assert.ok(again.usage.prompt_tokens_details.cached_tokens > 0, 'prefix cache hit expected');
});

await check('chat streaming matches the non-streamed text, with include_usage', async () => {
  const stream = await client.chat.completions.create({
    model, messages, max_tokens: 12, temperature: 0, stream: true, stream_options: { include_usage: true },
  });
  let text = '', finish = null, usage = null, chunks = 0;
  for await (const chunk of stream) {
    chunks++;
    if (chunk.usage) usage = chunk.usage;
    for (const c of chunk.choices) {
      text += c.delta.content ?? '';
      if (c.finish_reason) finish = c.finish_reason;
    }
  }
  assert.ok(chunks >= 3);
  assert.equal(text, greedyText);
  assert.ok(['length', 'stop'].includes(finish));
  assert.ok(usage && usage.completion_tokens >= 1);
});

await check('continuous_usage_stats puts the usage so far in every chunk', async () => {
  const stream = await client.chat.completions.create({
    model, messages, max_tokens: 6, temperature: 0, ignore_eos: true, stream: true,
    stream_options: { include_usage: true, continuous_usage_stats: true },
  });
  const counts = [];
  for await (const chunk of stream) {
    assert.ok(chunk.usage, 'every chunk carries usage');
    assert.equal(chunk.usage.total_tokens, chunk.usage.prompt_tokens + chunk.usage.completion_tokens);
    counts.push(chunk.usage.completion_tokens);
  }
  assert.equal(counts[0], 0, 'the role chunk comes before any token');
  assert.deepEqual([...counts].sort((a, b) => a - b), counts, 'counts never go down');
  assert.equal(counts[counts.length - 1], 6);
});

await check('completions, non-streamed and streamed, with logprobs', async () => {
  const r = await client.completions.create({ model, prompt: 'The capital of France is', max_tokens: 6, temperature: 0, logprobs: 2 });
  assert.equal(r.object, 'text_completion');
  const lp = r.choices[0].logprobs;
  assert.equal(lp.tokens.length, r.usage.completion_tokens);
  assert.equal(lp.token_logprobs.length, lp.tokens.length);
  for (const top of lp.top_logprobs) assert.ok(Object.keys(top).length >= 1 && Object.keys(top).length <= 2);
  for (const x of lp.token_logprobs) assert.ok(x <= 0);
  const stream = await client.completions.create({ model, prompt: 'The capital of France is', max_tokens: 6, temperature: 0, stream: true });
  let text = '';
  for await (const chunk of stream) text += chunk.choices[0]?.text ?? '';
  assert.equal(text, r.choices[0].text);
});

await check('chat logprobs with top_logprobs', async () => {
  const r = await client.chat.completions.create({ model, messages, max_tokens: 4, temperature: 0, logprobs: true, top_logprobs: 3 });
  const content = r.choices[0].logprobs.content;
  assert.equal(content.length, r.usage.completion_tokens);
  for (const t of content) {
    assert.equal(t.top_logprobs.length, 3);
    assert.ok(t.logprob <= t.top_logprobs[0].logprob + 1e-6);
    assert.ok(Array.isArray(t.bytes));
  }
});

await check('stop strings end the text before them with finish_reason stop', async () => {
  const r = await client.completions.create({ model, prompt: 'Once upon a time', max_tokens: 16, temperature: 0, ignore_eos: true });
  const full = r.choices[0].text;
  assert.ok(full.length >= 6, `need some text, got ${JSON.stringify(full)}`);
  const stop = full.slice(3, 6);
  const cut = full.slice(0, full.indexOf(stop));
  const s = await client.completions.create({ model, prompt: 'Once upon a time', max_tokens: 16, temperature: 0, ignore_eos: true, stop: [stop, 'never-appears-xyz'] });
  assert.equal(s.choices[0].finish_reason, 'stop');
  assert.equal(s.choices[0].text, cut);
  // Streamed the same way.
  const stream = await client.completions.create({ model, prompt: 'Once upon a time', max_tokens: 16, temperature: 0, ignore_eos: true, stop, stream: true });
  let text = '', finish = null;
  for await (const chunk of stream) {
    text += chunk.choices[0]?.text ?? '';
    if (chunk.choices[0]?.finish_reason) finish = chunk.choices[0].finish_reason;
  }
  assert.equal(text, cut);
  assert.equal(finish, 'stop');
});

await check('n choices, seeds, penalties and sampling parameters', async () => {
  const params = { model, messages, max_tokens: 8, temperature: 0.9, top_p: 0.9, top_k: 50, min_p: 0.01, seed: 7, presence_penalty: 0.5, frequency_penalty: 0.2, n: 3 };
  const a = await client.chat.completions.create(params);
  const b = await client.chat.completions.create(params);
  assert.equal(a.choices.length, 3);
  assert.deepEqual(a.choices.map((c) => c.index), [0, 1, 2]);
  assert.deepEqual(a.choices.map((c) => c.message.content), b.choices.map((c) => c.message.content));
  assert.equal(a.usage.completion_tokens, a.choices.length * 8);
  const c = await client.chat.completions.create({ ...params, max_completion_tokens: 3, max_tokens: undefined, n: 1 });
  assert.equal(c.usage.completion_tokens, 3);
});

await check('seeded sampling without penalties repeats, and logit_bias steers it', async () => {
  // No penalties: these rows are sampled on the device path; the seed still decides.
  const params = { model, messages, max_tokens: 8, temperature: 1.0, top_p: 0.95, seed: 11, n: 2 };
  const a = await client.chat.completions.create(params);
  const b = await client.chat.completions.create(params);
  assert.deepEqual(a.choices.map((c) => c.message.content), b.choices.map((c) => c.message.content));
  // +100 on one token: every seed draws it, so the texts agree across seeds.
  const biased = { model, messages, max_tokens: 6, temperature: 1.0, logit_bias: { 72: 100 } };
  const x = await client.chat.completions.create({ ...biased, seed: 1 });
  const y = await client.chat.completions.create({ ...biased, seed: 2 });
  assert.equal(x.usage.completion_tokens, 6);
  assert.equal(x.choices[0].message.content, y.choices[0].message.content);
});

await check('an aborted stream frees the server, which keeps serving', async () => {
  const controller = new AbortController();
  const stream = await client.chat.completions.create({ model, messages, max_tokens: 400, ignore_eos: true, stream: true }, { signal: controller.signal });
  let seen = 0;
  try {
    for await (const chunk of stream) {
      if (++seen === 3) controller.abort();
    }
  } catch (e) {
    assert.ok(e.name === 'APIUserAbortError' || e.name === 'AbortError', e.name);
  }
  // The request is cancelled: nothing stays running.
  const deadline = Date.now() + 20000;
  let running = -1;
  while (Date.now() < deadline) {
    const text = await (await fetch(baseURL.replace(/\/v1$/, '') + '/metrics')).text();
    running = Number(/^tokenfab_num_requests_running (\S+)$/m.exec(text)[1]);
    if (running === 0) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.equal(running, 0);
  const r = await client.chat.completions.create({ model, messages, max_tokens: 2 });
  assert.equal(r.choices.length, 1);
});

await check('a wrong API key is a 401 AuthenticationError', async () => {
  const bad = new OpenAI({ baseURL, apiKey: 'wrong-key', maxRetries: 0 });
  await assert.rejects(bad.chat.completions.create({ model, messages, max_tokens: 2 }), (e) => e.status === 401 && e instanceof OpenAI.AuthenticationError);
});

await check('an unknown model is a 404 NotFoundError', async () => {
  await assert.rejects(client.chat.completions.create({ model: 'no-such-model', messages, max_tokens: 2 }), (e) => e.status === 404 && e.code === 'model_not_found');
});

await check('bad parameters are 400 BadRequestErrors naming the field', async () => {
  await assert.rejects(client.chat.completions.create({ model, messages, max_tokens: 0 }), (e) => e.status === 400 && e.param === 'max_tokens');
  await assert.rejects(client.chat.completions.create({ model, messages: [] }), (e) => e.status === 400 && e.param === 'messages');
  await assert.rejects(client.chat.completions.create({ model, messages, temperature: 'hot' }), (e) => e.status === 400 && e.param === 'temperature');
  await assert.rejects(client.chat.completions.create({ model, messages, frobnicate: true }), (e) => e.status === 400 && e.param === 'frobnicate');
  await assert.rejects(client.completions.create({ model, prompt: 'word '.repeat(3000), max_tokens: 4 }), (e) => e.status === 400 && e.code === 'context_length_exceeded');
});

console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);

// A browser page on another origin uses the API through the local stack's gateway,
// or (BROWSER_TARGET=emulated) through the emulated API Gateway of `local emulate`,
// whose CORS answers come from template.yaml.
//
// Usage: node scripts/steps/browser/test.mjs [path/to/local binary]   (after browser_tools
// from scripts/tools.sh: Debian's chromium, playwright-core in .tools/node)
//   BROWSER_TARGET=emulated EMULATE_BUILD_DIR=.aws-sam/build node scripts/steps/browser/test.mjs
//
// For each CORS_ALLOWED_ORIGINS setting it starts the local stack binary on free
// ports, serves dashboard.html from another port, opens it in headless chromium and
// runs its register → login → create → edit → list → delete flow with fetch(). Unset:
// every step answers as the spec says, the page reads X-Next-Cursor and Retry-After
// (a login refused with 429 after LOGIN_MAX_FAILURES_PER_USER=2), and the browser
// reports no CORS or network error. Another origin, or an empty value: the browser
// refuses the very first call, as a CORS error.
//
// Then (local stack only) a password reset from the app's pages (reset.html, served at
// /forgot-password and /reset-password of the page's origin, which is the stack's
// APP_URL): the page asks for a link, the test reads the mail from the local mailbox
// (GET /_aws/ses?to=… on the gateway), opens the link's /reset-password#token=…, where
// the page sets a new password from a form, and signs in with it; what the page shows
// is checked at each step.

import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import assert from "node:assert/strict";

const HERE = dirname(fileURLToPath(import.meta.url));
const REPO = resolve(HERE, "../../..");
const NODE_MODULES = process.env.BROWSER_NODE_MODULES || join(REPO, ".tools/node/node_modules");
const { chromium } = createRequire(join(NODE_MODULES, "noop.js"))("playwright-core");
const LOCAL_BIN = process.argv[2] || join(REPO, "target/debug/local");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
const DEADLINE_MS = 120_000;
const TARGET = process.env.BROWSER_TARGET || "local";
const BUILD_DIR = process.env.EMULATE_BUILD_DIR || join(REPO, ".aws-sam/build");
// Wrong passwords before the 429: the local stack is started with 2; the template
// leaves LOGIN_MAX_FAILURES_PER_USER at its default, 5.
const MAX_FAILURES = TARGET === "emulated" ? 5 : 2;

function freePort() {
  return new Promise((ok, fail) => {
    const server = createServer();
    server.once("error", fail);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => ok(port));
    });
  });
}

/** Serves dashboard.html, reset.html (at the app's /forgot-password and /reset-password)
 * and /config.js (`window.API`: the URL of the stack in `server.api`) on
 * 127.0.0.1:<port>; resolves to the server, whose `requests` lists the URLs asked for. */
function servePage(port) {
  const html = (file) => ({ type: "text/html; charset=utf-8", body: readFileSync(join(HERE, file)) });
  const pages = {
    "/dashboard.html": html("dashboard.html"),
    "/forgot-password": html("reset.html"),
    "/reset-password": html("reset.html"),
  };
  const server = createServer((req, res) => {
    server.requests.push(req.url);
    const path = new URL(req.url, "http://page").pathname;
    const page = path === "/config.js"
      ? { type: "text/javascript", body: `window.API = ${JSON.stringify(server.api)};\n` }
      : pages[path];
    if (page) {
      res.writeHead(200, { "content-type": page.type }).end(page.body);
    } else {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found");
    }
  });
  server.requests = [];
  return new Promise((ok, fail) => {
    server.once("error", fail);
    server.listen(port, "127.0.0.1", () => ok(server));
  });
}

/** Starts the local stack binary with `cors` as CORS_ALLOWED_ORIGINS (undefined: unset)
 * and `appUrl` as APP_URL, or the emulated API with `cors` as the template's
 * CorsAllowedOrigins parameter. */
async function startStack(cors, appUrl) {
  let child, url;
  if (TARGET === "emulated") {
    const port = await freePort();
    const args = ["emulate", "--port", String(port), "--build-dir", BUILD_DIR, "--parameter-overrides", "BcryptCost=10", "RegisterMaxPerIp=1000000"];
    if (cors !== undefined) args.push(`CorsAllowedOrigins=${cors}`);
    child = spawn(LOCAL_BIN, args, { env: { ...process.env, RUST_LOG: "warn" }, stdio: ["ignore", "pipe", "pipe"] });
    url = `http://localhost:${port}`;
  } else {
    const [auth, users, gateway] = [await freePort(), await freePort(), await freePort()];
    const env = { ...process.env, AUTH_PORT: auth, USERS_PORT: users, GATEWAY_PORT: gateway, BCRYPT_COST: "4", STORE: "memory", LOGIN_MAX_FAILURES_PER_USER: String(MAX_FAILURES), REGISTER_MAX_PER_IP: "1000000", APP_URL: appUrl, MAILER: "mailbox" };
    delete env.CORS_ALLOWED_ORIGINS;
    delete env.AUTH_SERVICE_URL;
    delete env.USER_SERVICE_URL;
    if (cors !== undefined) env.CORS_ALLOWED_ORIGINS = cors;
    child = spawn(LOCAL_BIN, [], { env, stdio: ["ignore", "pipe", "pipe"] });
    url = `http://127.0.0.1:${gateway}`;
  }
  let output = "";
  child.stdout.on("data", (d) => (output += d));
  child.stderr.on("data", (d) => (output += d));
  const until = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`local exited with ${child.exitCode}:\n${output}`);
    try {
      if ((await fetch(`${url}/`)).ok) break;
    } catch {
      // Not listening yet.
    }
    if (Date.now() > until) {
      child.kill("SIGKILL");
      throw new Error(`local did not answer on ${url} within 60 s:\n${output}`);
    }
    await new Promise((ok) => setTimeout(ok, 100));
  }
  const stop = () =>
    new Promise((ok) => {
      if (child.exitCode !== null) return ok();
      child.once("exit", ok);
      child.kill("SIGINT");
      setTimeout(() => child.kill("SIGKILL"), 5_000).unref();
    });
  return { url, stop, output: () => output };
}

/**
 * A headless chromium on a fresh profile. A browser that dies while starting (Debian's
 * chromium now and then segfaults in crashpad on this kind of VM, before any page
 * exists) is started again, at most twice: it has run nothing of the test yet.
 */
async function launch() {
  for (let attempt = 1; ; attempt++) {
    const profile = mkdtempSync(join(tmpdir(), "browser-test-"));
    try {
      const context = await chromium.launchPersistentContext(profile, {
        executablePath: CHROMIUM,
        headless: true,
        args: CHROMIUM_ARGS,
        timeout: 90_000,
      });
      return { context, profile };
    } catch (error) {
      rmSync(profile, { recursive: true, force: true });
      if (attempt >= 3) throw error;
      console.error(`chromium did not start (attempt ${attempt}): ${String(error).split("\n")[0]}; again`);
    }
  }
}

/** Runs `walk(page)` in a page of a fresh chromium profile; resolves to
 * `{steps: <what walk resolved to>, problems, consoleErrors}`. */
async function inBrowser(walk) {
  const { context, profile } = await launch();
  const problems = [];
  const consoleErrors = [];
  try {
    const page = context.pages()[0] ?? (await context.newPage());
    page.setDefaultTimeout(DEADLINE_MS);
    page.on("console", (msg) => {
      if (msg.type() === "error") consoleErrors.push(msg.text());
    });
    page.on("pageerror", (err) => problems.push(`page error: ${err.message}`));
    page.on("requestfailed", (req) =>
      problems.push(`request failed: ${req.method()} ${req.url()}: ${req.failure()?.errorText}`),
    );
    return { steps: await walk(page), problems, consoleErrors };
  } finally {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  }
}

/** Opens the dashboard, runs its flow against the stack. */
function runInBrowser(pageUrl, stack) {
  return inBrowser(async (page) => {
    const response = await page.goto(`${pageUrl}/dashboard.html?api=${encodeURIComponent(stack.url)}`);
    assert.equal(response.status(), 200, "the dashboard page loads");
    return page.evaluate(() => window.dashboard.run());
  });
}

const FORGOT_ANSWER = "If an account has this email, a password reset link has been sent";

/** The mails of the local mailbox (GET /_aws/ses on the gateway) to `address` with `subject`. */
async function mailsTo(api, address, subject) {
  const response = await fetch(`${api}/_aws/ses?to=${encodeURIComponent(address)}`);
  assert.equal(response.status, 200, "GET /_aws/ses answers");
  const { messages } = await response.json();
  return messages.filter((m) => m.Destination.ToAddresses.includes(address) && m.Subject === subject);
}

/** Submits the form whose button says `button`; resolves to [status, text] of what the
 * page then shows in the element `shown`. */
async function submit(page, button, shown) {
  await page.getByRole("button", { name: button }).click();
  const element = page.locator(`#${shown}`);
  await page.waitForFunction((id) => document.getElementById(id).dataset.status, shown);
  return [await element.getAttribute("data-status"), await element.textContent()];
}

/** A password reset from the app's pages, the link read from the local mailbox, then a
 * sign-in with the new password; asserts what the page shows at each step. */
function runReset(pageUrl, stack, pageServer) {
  const [username, password, newPassword] = ["carol", "securePassword123", "a-new-passphrase-42"];
  const email = `${username}@example.com`;
  return inBrowser(async (page) => {
    const registered = await fetch(`${stack.url}/api/register`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ username, email, password }),
    });
    assert.equal(registered.status, 200, "registered");

    assert.equal((await page.goto(`${pageUrl}/forgot-password`)).status(), 200, "the forgot page loads");
    assert.equal(await page.locator("h1").textContent(), "Forgot your password?");
    await page.locator("#forgot-email").fill(email);
    assert.deepEqual(await submit(page, "Send reset link", "status"), ["202", FORGOT_ANSWER],
      "the page shows the forgot answer");

    const mails = await mailsTo(stack.url, email, "Reset your password");
    assert.equal(mails.length, 1, "one reset mail in the local mailbox");
    const link = /\S+\/reset-password#token=[A-Za-z0-9_-]{43}\b/.exec(mails[0].Body.text_part)?.[0];
    assert.ok(link?.startsWith(`${pageUrl}/reset-password#token=`), `the mail links to the app's page: ${link}`);
    const token = link.split("#token=")[1];

    assert.equal((await page.goto(link)).status(), 200, "the link's page loads");
    assert.equal(await page.locator("h1").textContent(), "Choose a new password");
    assert.equal(page.url(), `${pageUrl}/reset-password`, "the page drops the token from the address bar");
    assert.ok(!pageServer.requests.some((url) => url.includes(token)), "the token never reaches the page's server");
    await page.locator("#new-password").fill(newPassword);
    assert.deepEqual(await submit(page, "Set new password", "status"), ["200", "Password reset successfully"],
      "the page shows the reset done");

    await page.locator("#login-username").fill(username);
    await page.locator("#login-password").fill(password);
    assert.deepEqual(await submit(page, "Sign in", "session"), ["401", "Invalid username or password"],
      "the old password is refused");
    await page.locator("#login-password").fill(newPassword);
    assert.deepEqual(await submit(page, "Sign in", "session"), ["200", `Signed in as ${username}`],
      "the new password signs in");

    await page.locator("#new-password").fill("yet-another-passphrase-7");
    assert.deepEqual(await submit(page, "Set new password", "status"), ["400", "Invalid or expired token"],
      "the link works once");
    assert.equal((await mailsTo(stack.url, email, "Your password was reset")).length, 1, "a notice was mailed");
    return ["forgot", "mail", "reset", "old password", "new password", "reset again", "notice"];
  });
}

const byName = (steps) => Object.fromEntries(steps.map((s) => [s.name, s]));
const apiError = (status, message) => ({ status: String(status), message });

/** Chrome logs every 4xx answer as "Failed to load resource"; those are the API's own. */
function unexpectedConsoleErrors(consoleErrors, expectedStatuses) {
  return consoleErrors.filter((text) => {
    const m = /Failed to load resource: the server responded with a status of (\d+)/.exec(text);
    return !(m && expectedStatuses.includes(Number(m[1])));
  });
}

function checkAllowed({ steps, problems, consoleErrors }) {
  const s = byName(steps);
  const failed = steps.filter((x) => x.error);
  assert.deepEqual(failed, [], "no fetch was refused");
  assert.deepEqual(problems, [], "no failed request or page error");
  assert.deepEqual(unexpectedConsoleErrors(consoleErrors, [401, 404, 429]), [], "no CORS or network error in the console");

  assert.equal(s.register.status, 200);
  assert.equal(s.register.body.username, "alice");
  assert.equal(s.register.body.message, "User registered successfully");
  const id = s.register.body.user_id;
  assert.match(id, /^[0-9a-f-]{36}$/);
  assert.equal(s.login.status, 200);
  assert.equal(s.login.body.token_type, "Bearer");
  assert.equal(typeof s.login.body.token, "string");
  assert.equal(s["create other profile"].status, 200);
  assert.deepEqual([s["list without token"].status, s["list without token"].body], [401, apiError(401, "Missing authorization header")]);
  assert.deepEqual([s.create.status, s.create.body], [200, { user_id: id, message: "Profile created successfully" }]);
  assert.deepEqual([s.edit.status, s.edit.body], [200, { user_id: id, message: "Profile updated successfully" }]);
  assert.equal(s.get.status, 200);
  assert.equal(s.get.body.bio, "Senior software developer");
  assert.equal(s.get.body.full_name, "Alice Smith");

  const [p1, p2] = [s["list page 1"], s["list page 2"]];
  assert.equal(p1.status, 200);
  assert.equal(p1.body.length, 1, "one profile per page");
  assert.ok(p1.nextCursor, "the page reads X-Next-Cursor from the first page");
  assert.ok(p1.requestId, "the page reads X-Request-Id");
  assert.equal(p2.status, 200);
  assert.equal(p2.body.length, 1);
  assert.equal(p2.nextCursor, null, "no cursor on the last page");
  const listed = [p1.body[0].user_id, p2.body[0].user_id].sort();
  assert.deepEqual(listed, [id, s["register other"].body.user_id].sort(), "both pages together list both profiles");

  assert.deepEqual([s.delete.status, s.delete.body], [200, { user_id: id, message: "Profile deleted successfully" }]);
  assert.deepEqual([s["get deleted"].status, s["get deleted"].body], [404, apiError(404, "User not found")]);

  const wrong = steps.filter((x) => x.name.startsWith("wrong password"));
  const last = wrong[wrong.length - 1];
  assert.deepEqual(wrong.slice(0, -1).map((x) => x.status), Array(MAX_FAILURES).fill(401), `${MAX_FAILURES} failures allowed`);
  assert.deepEqual(
    [last.status, last.body],
    [429, apiError(429, "Too many failed login attempts, try again later")],
  );
  assert.match(last.retryAfter ?? "", /^[1-9][0-9]*$/, "the page reads Retry-After");
}

function checkRefused({ steps, problems, consoleErrors }) {
  assert.equal(steps.length, 1, `the first call is refused: ${JSON.stringify(steps)}`);
  assert.equal(steps[0].name, "register");
  assert.match(steps[0].error, /TypeError: Failed to fetch/);
  assert.ok(consoleErrors.some((text) => /CORS policy/.test(text)), `a CORS error in the console: ${consoleErrors}`);
  assert.ok(problems.some((text) => text.includes("/api/register")), `the request is reported failed: ${problems}`);
}

function checkReset({ problems, consoleErrors }) {
  assert.deepEqual(problems, [], "no failed request or page error");
  assert.deepEqual(unexpectedConsoleErrors(consoleErrors, [400, 401]), [], "no CORS or network error in the console");
}

const CASES = TARGET === "emulated" ? [
  { name: "emulated API, template's CorsAllowedOrigins default (*)", cors: undefined, check: checkAllowed },
  { name: "emulated API, CorsAllowedOrigins naming the page's origin", cors: (page) => page, check: checkAllowed },
  { name: "emulated API, CorsAllowedOrigins naming another origin", cors: () => "http://elsewhere.example", check: checkRefused },
] : [
  { name: "CORS_ALLOWED_ORIGINS unset: any origin", cors: undefined, check: checkAllowed },
  { name: "CORS_ALLOWED_ORIGINS naming the page's origin", cors: (page) => page, check: checkAllowed },
  { name: "CORS_ALLOWED_ORIGINS naming another origin", cors: () => "http://elsewhere.example", check: checkRefused },
  { name: "CORS_ALLOWED_ORIGINS empty: CORS off", cors: () => "", check: checkRefused },
  { name: "a password reset from the app's pages, the link from the local mailbox", cors: undefined, walk: runReset, check: checkReset },
];

async function main() {
  const page = await servePage(await freePort());
  const pageUrl = `http://127.0.0.1:${page.address().port}`;
  let failures = 0;
  try {
    for (const test of CASES) {
      const started = Date.now();
      const stack = await startStack(typeof test.cors === "function" ? test.cors(pageUrl) : test.cors, pageUrl);
      page.api = stack.url;
      try {
        const result = await (test.walk ?? runInBrowser)(pageUrl, stack, page);
        try {
          test.check(result);
          console.log(`ok   ${test.name} (${Date.now() - started} ms, ${result.steps.length} calls)`);
        } catch (err) {
          failures++;
          console.error(`FAIL ${test.name}: ${err.message}\n${JSON.stringify(result, null, 2)}`);
        }
      } catch (err) {
        failures++;
        console.error(`FAIL ${test.name}: ${err.stack}\nlocal output:\n${stack.output()}`);
      } finally {
        await stack.stop();
      }
    }
  } finally {
    page.close();
  }
  if (failures) {
    console.error(`browser test: ${failures} of ${CASES.length} cases failed`);
    process.exit(1);
  }
  console.log(`browser test: all ${CASES.length} cases passed`);
}

await main();

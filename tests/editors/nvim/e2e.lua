-- End-to-end driver for Neovim 0.7.2 (headless), run by tests/editors/test_neovim.py:
--
--   SWITCHEROO_E2E_SPEC=spec.json nvim --headless -u NONE -i NONE -n -c "luafile e2e.lua" FILE
--
-- spec.json: {"cmd": [...server command...], "cmd_env": {...}, "root": DIR, "result": PATH,
--             "timeout_ms": N, "files": [{"path": P, "hovers": [{"line": L, "col": C}, ...],
--                        "action": {"kind": "quickfix"|"source.fixAll.switcheroo", "line": L, "col": C}?,
--                        "sweep": ["OPX101", ...]?}]}
-- (lines 1-based, columns 0-based bytes, as nvim_win_set_cursor takes them).
--
-- For each file it opens the buffer, attaches the one switcheroo client, waits for pushed
-- diagnostics, asks for hovers, then goes through the real UI path:
-- vim.lsp.buf.code_action({only = {kind}}) with vim.ui.select answering with the first item
-- (for fix-all: the fix-all item), waits until the edit lands and the server has published
-- diagnostics for the new version, and :writes the file. With "sweep" it quick-fixes those
-- codes one diagnostic at a time, as a user would, until none is left. Everything observed goes to
-- spec.result as JSON; any failure writes {"error": ...} there too and exits with cquit 1.

local function read_file(path)
  local fd = assert(io.open(path, "r"), "cannot read " .. tostring(path))
  local text = fd:read("*a")
  fd:close()
  return text
end

local spec_path = os.getenv("SWITCHEROO_E2E_SPEC")
local spec = vim.fn.json_decode(read_file(assert(spec_path, "SWITCHEROO_E2E_SPEC is not set")))
local timeout = spec.timeout_ms or 20000
local result = { files = {}, notifications = {}, server_messages = {} }

local function write_result()
  vim.fn.writefile({ vim.fn.json_encode(result) }, spec.result)
end

local function fail(msg)
  result.error = msg
  pcall(write_result)
  io.stderr:write("e2e.lua: " .. msg .. "\n")
  vim.cmd("cquit 1")
end

local function wait_for(what, predicate)
  local ok = vim.wait(timeout, predicate, 20)
  if not ok then
    error("timed out after " .. timeout .. " ms waiting for " .. what, 0)
  end
end

-- Everything the editor would show the user, kept for the report.
vim.notify = function(msg, level)
  table.insert(result.notifications, { message = tostring(msg), level = level })
end
local function record_server_message(kind)
  return function(_, params)
    table.insert(result.server_messages, { kind = kind, type = params.type, message = params.message })
  end
end

-- Pushed diagnostics, with the version the server says they belong to.
local published = {}
local publish = vim.lsp.handlers["textDocument/publishDiagnostics"]
vim.lsp.handlers["textDocument/publishDiagnostics"] = function(err, res, ctx, config)
  publish(err, res, ctx, config)
  if res and res.uri then
    local bufnr = vim.uri_to_bufnr(res.uri)
    published[bufnr] = published[bufnr] or {}
    table.insert(published[bufnr], { version = res.version or vim.NIL, count = #res.diagnostics })
  end
end

local function last_published(bufnr)
  local list = published[bufnr]
  return list and list[#list] or nil
end

local function diagnostics_of(bufnr)
  local out = {}
  for _, d in ipairs(vim.diagnostic.get(bufnr)) do
    table.insert(out, {
      lnum = d.lnum, col = d.col, end_lnum = d.end_lnum, end_col = d.end_col,
      code = d.code or vim.NIL, severity = d.severity, source = d.source or vim.NIL, message = d.message,
    })
  end
  table.sort(out, function(a, b)
    if a.lnum ~= b.lnum then return a.lnum < b.lnum end
    if a.col ~= b.col then return a.col < b.col end
    return tostring(a.code) < tostring(b.code)
  end)
  return out
end

local function buffer_text(bufnr)
  return table.concat(vim.api.nvim_buf_get_lines(bufnr, 0, -1, true), "\n") .. "\n"
end

-- The real UI path: vim.lsp.buf.code_action at the cursor, the menu (vim.ui.select) answered
-- with its first item (for a non-quickfix kind: the first item of that kind). Returns once
-- the edit is in the buffer and the server has published diagnostics for the new version.
local function code_action(bufnr, kind, line, col)
  vim.api.nvim_win_set_cursor(0, { line, col })
  local offered, chosen
  vim.ui.select = function(items, _, on_choice)
    offered = {}
    for _, tuple in ipairs(items) do
      local a = tuple[2]
      table.insert(offered, { title = a.title, kind = a.kind or vim.NIL, isPreferred = a.isPreferred or false })
    end
    local pick = items[1]
    if kind ~= "quickfix" then
      pick = nil
      for _, tuple in ipairs(items) do
        if tuple[2].kind == kind then pick = tuple break end
      end
    end
    chosen = pick and { title = pick[2].title, kind = pick[2].kind or vim.NIL,
                        isPreferred = pick[2].isPreferred or false } or vim.NIL
    on_choice(pick, pick and 1 or nil)
  end
  local tick = vim.api.nvim_buf_get_changedtick(bufnr)
  local notified = #result.notifications
  vim.lsp.buf.code_action({ only = { kind } })
  local where = string.format("%s:%d:%d", vim.api.nvim_buf_get_name(bufnr), line, col)
  wait_for("the code action menu at " .. where, function()
    if offered == nil and #result.notifications > notified then   -- "No code actions available"
      error("no menu at " .. where .. ": " .. result.notifications[#result.notifications].message, 0)
    end
    return offered ~= nil
  end)
  if chosen == vim.NIL then
    error("no " .. kind .. " action offered at " .. where .. ": " .. vim.inspect(offered), 0)
  end
  wait_for("the " .. kind .. " edit at " .. where, function()
    return vim.api.nvim_buf_get_changedtick(bufnr) ~= tick
  end)
  -- The edit is applied synchronously inside the response handler: the buffer is final now.
  wait_for("diagnostics for the edited version after " .. where, function()
    local last = last_published(bufnr)
    if last ~= nil and last.version == vim.NIL then
      error("the server published diagnostics without a version: cannot tell which text they are for", 0)
    end
    return last ~= nil and last.version == vim.lsp.util.buf_versions[bufnr]
  end)
  return offered, chosen
end

local client_id

local function run_file(file)
  vim.cmd("edit " .. vim.fn.fnameescape(file.path))
  local bufnr = vim.api.nvim_get_current_buf()
  vim.bo[bufnr].filetype = "python"
  if not vim.lsp.buf_attach_client(bufnr, client_id) then
    error("buf_attach_client failed for " .. file.path, 0)
  end
  local out = { path = file.path }
  table.insert(result.files, out)

  wait_for("diagnostics on " .. file.path, function()
    return last_published(bufnr) ~= nil and #vim.diagnostic.get(bufnr) > 0
  end)
  out.published_version = last_published(bufnr).version
  out.buffer_version = vim.lsp.util.buf_versions[bufnr]
  out.diagnostics = diagnostics_of(bufnr)

  out.hovers = {}
  for _, at in ipairs(file.hovers or {}) do
    vim.api.nvim_win_set_cursor(0, { at.line, at.col })
    local params = vim.lsp.util.make_position_params()
    local responses, err = vim.lsp.buf_request_sync(bufnr, "textDocument/hover", params, timeout)
    if not responses then
      error("hover request failed: " .. tostring(err), 0)
    end
    local response = responses[client_id] or {}
    if response.error then
      error("hover error: " .. vim.inspect(response.error), 0)
    end
    local hover = response.result
    local entry = { line = at.line, col = at.col, kind = vim.NIL, value = vim.NIL, range = vim.NIL }
    if hover and hover ~= vim.NIL then
      local contents = hover.contents
      if type(contents) == "table" then
        entry.kind, entry.value = contents.kind or vim.NIL, contents.value or vim.NIL
      else
        entry.value = contents
      end
      entry.range = hover.range or vim.NIL
    end
    table.insert(out.hovers, entry)
  end

  if file.action then
    out.text_before = buffer_text(bufnr)
    out.offered, out.chosen = code_action(bufnr, file.action.kind, file.action.line, file.action.col)
    out.text_after_edit = buffer_text(bufnr)
    out.diagnostics_after = diagnostics_of(bufnr)
  end

  -- A user going through the findings one by one: quick fix the first diagnostic with one of
  -- these codes, wait for the new diagnostics, again, until none is left.
  if file.sweep then
    out.sweep = {}
    local wanted = {}
    for _, code in ipairs(file.sweep) do wanted[code] = true end
    for _ = 1, 40 do
      local target
      for _, d in ipairs(diagnostics_of(bufnr)) do
        if wanted[d.code] then target = d break end
      end
      if not target then break end
      local _, chosen = code_action(bufnr, "quickfix", target.lnum + 1, target.col)
      table.insert(out.sweep, { code = target.code, lnum = target.lnum, col = target.col, title = chosen.title,
                                isPreferred = chosen.isPreferred })
    end
    out.diagnostics_after = diagnostics_of(bufnr)
  end

  if file.action or file.sweep then
    vim.cmd("write")
    out.saved = not vim.bo[bufnr].modified
    out.text_after = buffer_text(bufnr)
  end
end

local function main()
  vim.lsp.set_log_level(spec.log_level or "debug")
  result.nvim_version = tostring(vim.version().major) .. "." .. vim.version().minor .. "." .. vim.version().patch
  result.lsp_log = vim.lsp.get_log_path()
  local exited
  client_id = vim.lsp.start_client({
    name = "switcheroo",
    cmd = spec.cmd,
    cmd_env = spec.cmd_env,
    root_dir = spec.root,
    flags = { debounce_text_changes = 20 },
    handlers = {
      ["window/logMessage"] = record_server_message("log"),
      ["window/showMessage"] = record_server_message("show"),
    },
    on_exit = function(code, signal) exited = { code = code, signal = signal } end,
  })
  if not client_id then
    error("vim.lsp.start_client returned nil for " .. vim.inspect(spec.cmd), 0)
  end
  for _, file in ipairs(spec.files) do
    run_file(file)
  end
  local client = vim.lsp.get_client_by_id(client_id)
  result.offset_encoding = client and client.offset_encoding or vim.NIL
  if client then
    result.server_capabilities = {
      codeActionProvider = client.server_capabilities.codeActionProvider or vim.NIL,
      hoverProvider = client.server_capabilities.hoverProvider or vim.NIL,
      textDocumentSync = client.server_capabilities.textDocumentSync or vim.NIL,
      diagnosticProvider = client.server_capabilities.diagnosticProvider or vim.NIL,
    }
  end
  -- A clean shutdown: the server must answer shutdown and exit on its own.
  vim.lsp.stop_client(client_id)
  local stopped = vim.wait(5000, function() return exited ~= nil end, 20)
  result.server_exit = stopped and exited or "did not exit within 5 s"
  write_result()
end

local ok, err = xpcall(main, function(e) return tostring(e) .. "\n" .. debug.traceback() end)
if not ok then
  fail(err)
else
  vim.cmd("qall!")
end

-- One step of a rate budget shared through Redis (see shared_budget.py): refill both
-- buckets, apply queued credits and a pause, then charge a request or say how long until
-- it could go, and count the processes alive. Times are in seconds, Redis's own (TIME), so
-- that machines whose clocks disagree still agree. A caller may pass the budget's time (a
-- test's clock); the processes are counted alive on Redis's time all the same, as their
-- heartbeats keep real time.
--
-- KEYS[1]  the state hash: rl/ru and tl/tu (request and token levels and when they were
--          last refilled), pu (paused until), sf and ss (slow-down factor and since when)
-- KEYS[2]  the process set: member = process id, score = its latest heartbeat
-- ARGV     requests/min and tokens/min (0: unlimited), burst seconds, token cost (-1: charge
--          nothing), request and token credits, pause seconds (-1: none), adaptive (1/0),
--          key TTL in ms, process id ("": no heartbeat), seconds a heartbeat counts for,
--          then the slow-down factor, its floor and its recovery per second, and the time
--          of the budget ("": Redis's TIME)
-- Reply    {delay ("0": charged), request level, token level ("": unlimited), rate factor,
--          pause remaining, processes alive}; numbers as strings, but the count
local rpm, tpm, burst = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local cost, credit_req, credit_tok = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local pause_s, adaptive, ttl_ms = tonumber(ARGV[7]), ARGV[8] == '1', tonumber(ARGV[9])
local member, window = ARGV[10], tonumber(ARGV[11])
local FACTOR, FLOOR, RECOVERY = tonumber(ARGV[12]), tonumber(ARGV[13]), tonumber(ARGV[14])
local t = redis.call('TIME')
local wall = tonumber(t[1]) + tonumber(t[2]) / 1000000
local now = tonumber(ARGV[15]) or wall
local f = redis.call('HMGET', KEYS[1], 'rl', 'ru', 'tl', 'tu', 'pu', 'sf', 'ss')
local paused_until = tonumber(f[5]) or 0
local slow_factor = tonumber(f[6]) or 1
local slow_since = tonumber(f[7])

local function factor(x)
  if slow_since == nil then return 1 end
  local elapsed = x - slow_since
  if elapsed <= 0 then return slow_factor end
  return math.min(1, slow_factor + RECOVERY * elapsed)
end

local function bucket(per_minute, minimum, level, updated)
  if per_minute <= 0 then return nil end
  local b = {rate = per_minute / 60, level = tonumber(level), updated = tonumber(updated)}
  b.cap = math.max(minimum, b.rate * burst)
  if b.level == nil or b.updated == nil then
    b.level, b.updated = b.cap, math.max(now, paused_until)
  end
  if now > b.updated then
    if b.level < b.cap then
      local mean = (factor(b.updated) + factor(now)) / 2
      b.level = math.min(b.cap, b.level + b.rate * (now - b.updated) * mean)
    end
    b.updated = now
  end
  return b
end

local function credit(b, amount)
  if b == nil then return end
  if amount >= 0 then
    b.level = math.max(b.level, math.min(b.level + amount, b.cap))
  else
    b.level = b.level + amount
  end
end

local function delay(b, c)
  if b == nil then return 0 end
  local deficit = math.min(c, b.cap) - b.level
  if deficit <= 1e-9 then return 0 end
  local start = math.max(now, b.updated)
  return (start - now) + deficit / (b.rate * factor(start))
end

local req = bucket(rpm, 1, f[1], f[2])
local tok = bucket(tpm, 0, f[3], f[4])
credit(req, credit_req)
credit(tok, credit_tok)
if pause_s >= 0 then
  if adaptive and now >= paused_until then
    slow_factor = math.max(FLOOR, FACTOR * factor(now))
  end
  paused_until = math.max(paused_until, now + pause_s)
  if adaptive then slow_since = paused_until end
  for _, b in ipairs({req or false, tok or false}) do
    if b then
      b.level = math.min(b.level, 0)
      b.updated = math.max(b.updated, paused_until)
    end
  end
end
local wait = 0
if cost >= 0 then
  wait = math.max(0, paused_until - now, delay(req, 1), delay(tok, cost))
  if wait <= 0 then
    if req then req.level = req.level - 1 end
    if tok then tok.level = tok.level - cost end
  end
end

local fields = {'pu', paused_until, 'sf', slow_factor}
if slow_since ~= nil then table.insert(fields, 'ss'); table.insert(fields, slow_since) end
if req then
  table.insert(fields, 'rl'); table.insert(fields, req.level)
  table.insert(fields, 'ru'); table.insert(fields, req.updated)
end
if tok then
  table.insert(fields, 'tl'); table.insert(fields, tok.level)
  table.insert(fields, 'tu'); table.insert(fields, tok.updated)
end
redis.call('HSET', KEYS[1], unpack(fields))
redis.call('PEXPIRE', KEYS[1], ttl_ms)

if member ~= '' then
  redis.call('ZADD', KEYS[2], wall, member)
  redis.call('PEXPIRE', KEYS[2], ttl_ms)
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', wall - window)
local live = redis.call('ZCARD', KEYS[2])
return {
  tostring(wait), req and tostring(req.level) or '', tok and tostring(tok.level) or '',
  tostring(factor(now)), tostring(math.max(0, paused_until - now)), live,
}

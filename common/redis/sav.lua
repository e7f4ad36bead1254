#!lua name=sav
--[[
SAV Functions library. Every state change of the platform is one call to a
function below, so that a change and the messages it emits are applied
together or not at all (messaging.md, step 1).

Rules every function follows:
  * read and validate everything first, write after: Lua in Redis has no rollback;
  * KEYS holds the keys known before the call; the keys a function derives
    (a ticket allocated inside the call) are built from ARGV[1], the shard
    prefix "<prefix>:{s<N>}:", so every key of a call shares one hash tag;
  * an input message is applied once: its dedup key is checked first and set last.
]]

local LIB_VERSION = '1'

-- Appends one timeline entry to a ticket.
local function timeline_add(prefix, tid, at, event, state, actor, detail)
  redis.call('RPUSH', prefix .. 'timeline:' .. tid,
    cjson.encode({at = tonumber(at), event = event, state = state, actor = actor, detail = detail or ''}))
end

-- Appends an event to a destination's outbox stream.
local function outbox_add(outbox, msg_id, msg_type, tid, at, source, body)
  redis.call('XADD', outbox, '*', 'id', msg_id, 'type', msg_type, 'ticket', tid, 'at', at, 'src', source,
    'body', body)
end

-- Collects ARGV[from..] as a flat field/value list.
local function tail(args, from)
  local out = {}
  for i = from, #args do out[#out + 1] = args[i] end
  return out
end

--[[
ticket_open: store a new ticket and emit TicketReceived to diagnostics.
KEYS: 1 request dedup key, 2 ticket sequence of the year, 3 outbox to diagnostics
ARGV: 1 shard prefix, 2 shard, 3 shard count, 4 year, 5 now ms, 6 dedup ttl s,
      7 TicketReceived body, 8.. ticket hash field/value pairs
Returns {ticket id, replayed 0|1}.
]]
local function ticket_open(keys, args)
  local prev = redis.call('GET', keys[1])
  if prev then return {prev, 1} end
  local prefix, shard, nshards = args[1], tonumber(args[2]), tonumber(args[3])
  local year, now, ttl = args[4], args[5], tonumber(args[6])
  local n = redis.call('INCR', keys[2])
  local tid = string.format('T-%s-%06d', year, (n - 1) * nshards + shard + 1)
  local tkey = prefix .. 'ticket:' .. tid
  local fields = tail(args, 8)
  redis.call('HSET', tkey, 'id', tid, 'state', 'received', 'created_at', now, 'updated_at', now, unpack(fields))
  redis.call('ZADD', prefix .. 'tickets', now, tid)
  timeline_add(prefix, tid, now, 'ticket.received', 'received', 'intake', '')
  outbox_add(keys[3], tid .. '/ticket.received', '100', tid, now, 'intake', args[7])
  redis.call('SET', keys[1], tid, 'EX', ttl)
  return {tid, 0}
end

--[[
event_apply: record what a service concluded from an event, move the ticket
forward and emit the next event, once.
KEYS: 1 dedup key of the input message, 2 outbox of the next service ('' if none... always passed)
ARGV: 1 shard prefix, 2 ticket id, 3 now ms, 4 dedup ttl s, 5 section name (hash suffix),
      6 state required for the transition ('' = any), 7 new state ('' = unchanged),
      8 timeline event, 9 actor, 10 timeline detail, 11 out message type ('' = emit nothing),
      12 out body, 13.. section field/value pairs
Returns 'applied', 'duplicate' or 'retry:<reason>' (ticket not there yet).
]]
local function event_apply(keys, args)
  if redis.call('EXISTS', keys[1]) == 1 then return 'duplicate' end
  local prefix, tid, now, ttl = args[1], args[2], args[3], tonumber(args[4])
  local section, need, new_state = args[5], args[6], args[7]
  local tkey = prefix .. 'ticket:' .. tid
  local state = redis.call('HGET', tkey, 'state')
  if not state then return 'retry:ticket ' .. tid .. ' not found' end
  local fields = tail(args, 13)
  if #fields > 0 then redis.call('HSET', prefix .. section .. ':' .. tid, unpack(fields)) end
  if new_state ~= '' and (need == '' or state == need) then
    state = new_state
    redis.call('HSET', tkey, 'state', state)
  end
  redis.call('HSET', tkey, 'updated_at', now)
  timeline_add(prefix, tid, now, args[8], state, args[9], args[10])
  if args[11] ~= '' then
    outbox_add(keys[2], tid .. '/' .. args[8], args[11], tid, now, args[9], args[12])
  end
  redis.call('SET', keys[1], '1', 'EX', ttl)
  return 'applied'
end

--[[
notification_record: store the rendered messages of one notification event, once per
(ticket, event, channel, version).
KEYS: 1 dedup key of the input message
ARGV: 1 shard prefix, 2 ticket id, 3 now ms, 4 dedup ttl s, 5 event, 6 count of notifications,
      then per notification 8 values: id, channel, status, recipient, subject, body, lang, version
Returns 'applied' or 'duplicate'.
]]
local function notification_record(keys, args)
  if redis.call('EXISTS', keys[1]) == 1 then return 'duplicate' end
  local prefix, tid, now, ttl, event = args[1], args[2], args[3], tonumber(args[4]), args[5]
  local tkey = prefix .. 'ticket:' .. tid
  local state = redis.call('HGET', tkey, 'state')
  if not state then return 'retry:ticket ' .. tid .. ' not found' end
  local count = tonumber(args[6])
  local recorded = {}
  for i = 0, count - 1 do
    local b = 7 + i * 8
    local nid = args[b]
    local nkey = prefix .. 'notif:' .. nid
    -- The notification id is (ticket, event, channel, version): a second event
    -- carrying the same id never records (and later never sends) twice.
    if redis.call('EXISTS', nkey) == 0 then
      redis.call('HSET', nkey, 'id', nid, 'ticket', tid, 'event', event, 'channel', args[b + 1],
        'status', args[b + 2], 'recipient', args[b + 3], 'subject', args[b + 4], 'body', args[b + 5],
        'lang', args[b + 6], 'version', args[b + 7], 'at', now)
      redis.call('RPUSH', prefix .. 'notifs:' .. tid, nid)
      recorded[#recorded + 1] = args[b + 1]
    end
  end
  timeline_add(prefix, tid, now, 'notification.recorded', state, 'notification', table.concat(recorded, ','))
  redis.call('SET', keys[1], '1', 'EX', ttl)
  return 'applied'
end

--[[
ticket_view (read-only): everything `ticket show` displays, in one round trip.
KEYS: 1 ticket hash
ARGV: 1 shard prefix, 2 ticket id
Returns nil if absent, else {ticket, prediagnosis, coverage, timeline, {notification...}} (flat hashes).
]]
local function ticket_view(keys, args)
  local ticket = redis.call('HGETALL', keys[1])
  if #ticket == 0 then return nil end
  local prefix, tid = args[1], args[2]
  local notifs = {}
  for _, nid in ipairs(redis.call('LRANGE', prefix .. 'notifs:' .. tid, 0, -1)) do
    notifs[#notifs + 1] = redis.call('HGETALL', prefix .. 'notif:' .. nid)
  end
  return {ticket, redis.call('HGETALL', prefix .. 'prediag:' .. tid), redis.call('HGETALL', prefix .. 'coverage:' .. tid),
    redis.call('LRANGE', prefix .. 'timeline:' .. tid, 0, -1), notifs}
end

--[[
outbox_ack: an entry was acknowledged by its destination: forget it.
KEYS: 1 outbox stream
ARGV: 1 group, 2.. entry ids
Returns the number of entries removed.
]]
local function outbox_ack(keys, args)
  local ids = tail(args, 2)
  redis.call('XACK', keys[1], args[1], unpack(ids))
  return redis.call('XDEL', keys[1], unpack(ids))
end

--[[
outbox_dead: move an entry that cannot be delivered to the dead-letter stream.
KEYS: 1 outbox stream, 2 dead-letter stream
ARGV: 1 group, 2 entry id, 3 destination, 4 reason, 5 attempts, 6 now ms
Returns 1 if moved, 0 if the entry was already gone.
]]
local function outbox_dead(keys, args)
  local entries = redis.call('XRANGE', keys[1], args[2], args[2])
  if #entries == 0 then return 0 end
  local fields = entries[1][2]
  redis.call('XADD', keys[2], '*', 'dest', args[3], 'reason', args[4], 'attempts', args[5], 'at', args[6],
    'outbox', keys[1], unpack(fields))
  redis.call('XACK', keys[1], args[1], args[2])
  redis.call('XDEL', keys[1], args[2])
  return 1
end

local function version() return LIB_VERSION end

redis.register_function('ticket_open', ticket_open)
redis.register_function('event_apply', event_apply)
redis.register_function('notification_record', notification_record)
redis.register_function{function_name = 'ticket_view', callback = ticket_view, flags = {'no-writes'}}
redis.register_function('outbox_ack', outbox_ack)
redis.register_function('outbox_dead', outbox_dead)
redis.register_function{function_name = 'sav_version', callback = version, flags = {'no-writes'}}

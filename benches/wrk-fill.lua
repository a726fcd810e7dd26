-- wrk -t1 -s wrk-fill.lua http://127.0.0.1:PORT   (env SWARMS, PEERS: peers per swarm)
-- Request i announces peer (i / SWARMS) % PEERS of swarm i % SWARMS: after SWARMS * PEERS requests
-- the tracker holds exactly that many peers (127.0.0.1 on ports 10000.., one seeder per swarm);
-- later requests are re-announces of the same peers. Info-hash n is 16 bytes 0xAB then n big-endian.
local swarms = tonumber(os.getenv("SWARMS") or "10000")
local peers = tonumber(os.getenv("PEERS") or "10")
local prefix = string.rep("%AB", 16)
local i = 0
local function hash(n)
  return prefix .. string.format("%%%02X%%%02X%%%02X%%%02X",
    math.floor(n / 16777216) % 256, math.floor(n / 65536) % 256, math.floor(n / 256) % 256, n % 256)
end
request = function()
  local s = i % swarms
  local p = math.floor(i / swarms) % peers
  i = i + 1
  local left = 1
  if p == 0 then left = 0 end
  local path = "/announce?info_hash=" .. hash(s) ..
     "&peer_id=" .. string.format("-WK0001-%012d", s * peers + p) .. "&port=" .. (10000 + p) ..
     "&uploaded=0&downloaded=0&left=" .. left .. "&compact=1&numwant=50"
  return wrk.format("GET", path)
end

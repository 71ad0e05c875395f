-- A small Wireshark dissector for ldmd's multicast_msg_t (UDP 64535), the
-- usual way to add a protocol to tshark; bench/run.sh times it against
-- ldm-sniff. Decodes the header and both payload forms, big-endian.
local ldm = Proto("ldm", "ldmd multicast message")

local msg_types = { [0] = "SEND_MSG", [1] = "RESPONSE_MSG", [2] = "LDMD_DISC_SEND", [3] = "LDMD_DISC_RESP" }

local f = ldm.fields
f.version_no = ProtoField.uint32("ldm.version_no", "version_no")
f.magic_no = ProtoField.uint32("ldm.magic_no", "magic_no", base.HEX)
f.msg_type = ProtoField.uint32("ldm.msg_type", "msg_type", base.DEC, msg_types)
f.resv = ProtoField.uint32("ldm.resv", "resv")
f.mac_addr = ProtoField.uint64("ldm.mac_addr", "mac_addr", base.HEX)
f.source_ip = ProtoField.string("ldm.source_ip", "source_ip")
f.ldmd_version = ProtoField.string("ldm.ldmd_version", "ldmd_version")
f.hostname = ProtoField.string("ldm.hostname", "hostname")
f.ip_address = ProtoField.ipv4("ldm.ip_address", "ip_address")
f.port_no = ProtoField.int32("ldm.port_no", "port_no")

function ldm.dissector(buffer, pinfo, tree)
    if buffer:len() < 16 then return 0 end
    pinfo.cols.protocol = "LDM"
    local t = tree:add(ldm, buffer(), "ldmd multicast message")
    t:add(f.version_no, buffer(0, 4))
    t:add(f.magic_no, buffer(4, 4))
    local msg_type = buffer(8, 4):uint()
    t:add(f.msg_type, buffer(8, 4))
    t:add(f.resv, buffer(12, 4))
    pinfo.cols.info = msg_types[msg_type] or "UNKNOWN"
    if msg_type <= 1 and buffer:len() >= 40 then
        t:add(f.mac_addr, buffer(16, 8))
        t:add(f.source_ip, buffer(24, 16))
    elseif msg_type >= 2 and msg_type <= 3 and buffer:len() >= 312 then
        t:add(f.ldmd_version, buffer(16, 32))
        t:add(f.hostname, buffer(48, 256))
        t:add(f.ip_address, buffer(304, 4))
        t:add(f.port_no, buffer(308, 4))
    end
    return buffer:len()
end

DissectorTable.get("udp.port"):add(64535, ldm)

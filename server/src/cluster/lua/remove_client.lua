-- remove_client: ARGV prefix, client. A disconnect: the client leaves its room and is
-- forgotten. Replies {'gone'} for an unknown client (already removed), else the reply of
-- `remove_client` in common.lua.
return remove_client(ARGV[2]) or {'gone'}

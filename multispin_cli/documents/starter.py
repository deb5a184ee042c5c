"""The starter profile `multispin init` writes: every section, commented, and it plans as is."""

STARTER_PROFILE = '''\
# A starter deployment profile for multispin: edit the numbers, then
#   multispin plan {name}
# Every key carries its unit in its name. `multispin schema profile` prints a JSON Schema
# for editors; the README's "Profile reference" lists every key.

[system]
name = "my-cell"
bandwidth_mhz = 20            # total uplink W shared by all devices (FDMA)
max_draft_length = 16         # longest draft the planners consider
# downlink_ms = 0.5           # downlink time per round
# batching = "ragged"         # or "padded": every draft padded to the longest

[payload]
kind = "token-ids"            # what a draft token costs: token-ids, top-k, full-distribution, bits
vocab_size = 32000            # bits per token = ceil(log2 32000) = 15
# header_bits = 64            # per upload

[server]
target = "Llama-2-7B on A100" # a label for the output
# target_model = "meta-llama/Llama-2-7b-hf"   # carried into exports
verify_base_ms = 10.0         # verification time T_v(N) = 10 ms + 0.086 ms x N positions
verify_ms_per_token = 0.086
# timings = "timings.toml"    # or measure: multispin profile-hardware --format toml -o timings.toml

[[devices]]
name = "phone"
count = 4                     # users phone-1 .. phone-4
acceptance = 0.6              # probability a draft token is accepted (or: multispin calibrate)
draft_ms_per_token = 3.0      # device time per draft token
snr_db = 10                   # fixed uplink SNR
# draft_model = "JackFram/llama-160m"         # carried into exports

[[devices]]
name = "laptop"
count = 2
acceptance = 0.8
draft_ms_per_token = 1.5
tx_power_dbm = 20             # a power-limited uplink ...
distance_m = 50               # ... at 50 m from the base station
'''

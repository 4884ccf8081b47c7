#pragma once
// Parsing and validation of the who-is-the-user keys (issue #17): `user-key`,
// `pin:<user>`, `buckets` and the finer `traffic-split` of 10000-bucket mode.
// Each throws InvalidStore naming the key. Pure; thread-safe.

#include <string>

#include "figshift/routing.hpp"

namespace figshift::store_keys {

// basic | header:<Name> | cookie:<name> | jwt | jwt:<claim>. Names are RFC 9110
// tokens; a header name is one figshift reads itself for nothing else.
UserKey parse_user_key(const std::string& key, const std::string& value);

// pin:<user> = new | legacy; <user> is a non-empty key value.
Group parse_pin(const std::string& key, const std::string& value);

// "100" or "10000".
int parse_buckets(const std::string& key, const std::string& value);

// traffic-split in hundredths of a point: with 100 buckets an integer 0..100
// (the sample's rule, unchanged); with 10000 up to two decimals, 0..100.
int parse_split_hundredths(const std::string& key, const std::string& value, int buckets);

}  // namespace figshift::store_keys

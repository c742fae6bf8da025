// A small strict JSON reader and writer: enough for config.json, model.safetensors.index.json
// and safetensors headers, with errors that say which file and where.
//
// Strictness: RFC 8259 grammar, UTF-8 checked, duplicate keys rejected, nesting limited to 256
// levels. One extension: NaN, Infinity and -Infinity are accepted (and written back) because
// Python's json module writes them and config.json files are written by Python.
//
// Objects keep their key order so that a config.json read and written back differs only where
// we changed it. Numbers keep the text they were read from for the same reason.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace lcx {

class Json {
 public:
  enum class Type { Null, Bool, Number, String, Array, Object };
  using Member = std::pair<std::string, Json>;

  Json() = default;  // null
  static Json boolean(bool b);
  static Json number(double d);
  static Json integer(int64_t i);
  // A number written as `text` (which must be valid JSON for d), e.g. a float's shortest form.
  static Json number_with_text(double d, std::string text);
  static Json string(std::string s);
  static Json array();
  static Json object();

  Type type() const { return type_; }
  bool is_null() const { return type_ == Type::Null; }
  bool is_bool() const { return type_ == Type::Bool; }
  bool is_number() const { return type_ == Type::Number; }
  bool is_string() const { return type_ == Type::String; }
  bool is_array() const { return type_ == Type::Array; }
  bool is_object() const { return type_ == Type::Object; }
  // True for a number written without fraction/exponent that fits in int64, or an integral
  // double (768.0) within int64 range.
  bool is_integer() const;
  static const char* type_name(Type t);
  const char* type_name() const { return type_name(type_); }

  // Accessors do not check the type (callers check first, to word their own messages).
  bool as_bool() const { return bool_; }
  double as_double() const { return num_; }
  int64_t as_int64() const;  // exact for integers (see is_integer)
  const std::string& as_string() const { return str_; }

  // Arrays.
  const std::vector<Json>& items() const { return items_; }
  std::vector<Json>& items() { return items_; }
  void push_back(Json v) { items_.push_back(std::move(v)); }

  // Objects (linear lookup: our objects have at most a few hundred keys, a shard index a few
  // thousand, looked up once each).
  const std::vector<Member>& members() const { return members_; }
  const Json* find(std::string_view key) const;
  Json* find(std::string_view key);
  // Replaces the value of key in place (keeping its position) or appends it.
  void set(std::string_view key, Json value);
  bool erase(std::string_view key);

  // The source text of a number as read (empty for numbers made in code).
  const std::string& number_text() const { return str_; }

 private:
  friend class JsonParser;
  Type type_ = Type::Null;
  bool bool_ = false;
  bool int_exact_ = false;  // int_ holds the exact value
  double num_ = 0;
  int64_t int_ = 0;
  std::string str_;  // string value, or a number's source text
  std::vector<Json> items_;
  std::vector<Member> members_;
};

// Throws lcx::Error(LCX_ERR_FORMAT): "<source_name>: invalid JSON at line L, column C: ...".
Json parse_json(std::string_view text, const std::string& source_name);

// indent < 0: compact one line; otherwise pretty-printed with that many spaces per level.
std::string write_json(const Json& value, int indent = -1);

// Shortest decimal text that reads back to the same double ("1e-05", "0.02", "768").
std::string format_double(double d);
// Same for a float: 1e-5f gives "1e-05", not the double expansion of the float.
std::string format_float(float f);

}  // namespace lcx

#include "json.hpp"

#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>

#include "../core/error.hpp"

namespace lcx {

// ---- values ---------------------------------------------------------------------------------

Json Json::boolean(bool b) {
  Json j;
  j.type_ = Type::Bool;
  j.bool_ = b;
  return j;
}

Json Json::number(double d) {
  Json j;
  j.type_ = Type::Number;
  j.num_ = d;
  return j;
}

Json Json::integer(int64_t i) {
  Json j;
  j.type_ = Type::Number;
  j.num_ = (double)i;
  j.int_ = i;
  j.int_exact_ = true;
  return j;
}

Json Json::string(std::string s) {
  Json j;
  j.type_ = Type::String;
  j.str_ = std::move(s);
  return j;
}

Json Json::array() {
  Json j;
  j.type_ = Type::Array;
  return j;
}

Json Json::object() {
  Json j;
  j.type_ = Type::Object;
  return j;
}

bool Json::is_integer() const {
  if (type_ != Type::Number) return false;
  if (int_exact_) return true;
  // 2^63 is exactly representable; anything at or above it does not fit.
  return std::isfinite(num_) && num_ == std::floor(num_) && num_ >= -9223372036854775808.0 &&
         num_ < 9223372036854775808.0;
}

int64_t Json::as_int64() const { return int_exact_ ? int_ : (int64_t)num_; }

const char* Json::type_name(Type t) {
  switch (t) {
    case Type::Null: return "null";
    case Type::Bool: return "boolean";
    case Type::Number: return "number";
    case Type::String: return "string";
    case Type::Array: return "array";
    case Type::Object: return "object";
  }
  return "?";
}

const Json* Json::find(std::string_view key) const {
  for (const auto& m : members_)
    if (m.first == key) return &m.second;
  return nullptr;
}

Json* Json::find(std::string_view key) {
  for (auto& m : members_)
    if (m.first == key) return &m.second;
  return nullptr;
}

void Json::set(std::string_view key, Json value) {
  if (Json* existing = find(key)) {
    *existing = std::move(value);
    return;
  }
  members_.emplace_back(std::string(key), std::move(value));
}

bool Json::erase(std::string_view key) {
  for (size_t i = 0; i < members_.size(); i++) {
    if (members_[i].first == key) {
      members_.erase(members_.begin() + (std::ptrdiff_t)i);
      return true;
    }
  }
  return false;
}

// ---- parser ---------------------------------------------------------------------------------

class JsonParser {
 public:
  JsonParser(std::string_view text, const std::string& source) : s_(text), source_(source) {}

  Json parse_document() {
    skip_ws();
    Json v = parse_value(0);
    skip_ws();
    if (pos_ != s_.size()) error("unexpected text after the JSON value");
    return v;
  }

 private:
  static constexpr int kMaxDepth = 256;
  std::string_view s_;
  const std::string& source_;
  size_t pos_ = 0;

  [[noreturn]] void error(const char* what) { error_at(pos_, what); }

  [[noreturn]] void error_at(size_t at, const char* what) {
    int line = 1, col = 1;
    for (size_t i = 0; i < at && i < s_.size(); i++) {
      if (s_[i] == '\n') {
        line++;
        col = 1;
      } else if (((unsigned char)s_[i] & 0xC0) != 0x80) {
        col++;  // count characters, not UTF-8 continuation bytes
      }
    }
    if (at >= s_.size())
      fail(LCX_ERR_FORMAT, "%s: invalid JSON at line %d, column %d (end of text): %s",
           source_.c_str(), line, col, what);
    fail(LCX_ERR_FORMAT, "%s: invalid JSON at line %d, column %d: %s", source_.c_str(), line,
         col, what);
  }

  bool at_end() const { return pos_ >= s_.size(); }
  char peek() const { return at_end() ? '\0' : s_[pos_]; }

  void skip_ws() {
    while (!at_end()) {
      char c = s_[pos_];
      if (c == ' ' || c == '\t' || c == '\n' || c == '\r')
        pos_++;
      else
        break;
    }
  }

  bool consume_literal(const char* lit) {
    size_t n = std::strlen(lit);
    if (s_.substr(pos_, n) == lit) {
      pos_ += n;
      return true;
    }
    return false;
  }

  Json parse_value(int depth) {
    if (depth > kMaxDepth) error("nesting deeper than 256 levels");
    if (at_end()) error("expected a value");
    char c = peek();
    switch (c) {
      case '{': return parse_object(depth);
      case '[': return parse_array(depth);
      case '"': return Json::string(parse_string());
      case 't':
        if (consume_literal("true")) return Json::boolean(true);
        break;
      case 'f':
        if (consume_literal("false")) return Json::boolean(false);
        break;
      case 'n':
        if (consume_literal("null")) return Json();
        break;
      case 'N':
        if (consume_literal("NaN")) return special_number(std::numeric_limits<double>::quiet_NaN(), "NaN");
        break;
      case 'I':
        if (consume_literal("Infinity")) return special_number(HUGE_VAL, "Infinity");
        break;
      default:
        if (c == '-' || (c >= '0' && c <= '9')) return parse_number();
    }
    error("expected a value (object, array, string, number, true, false or null)");
  }

  static Json special_number(double d, const char* text) {
    Json j = Json::number(d);
    j.str_ = text;
    return j;
  }

  Json parse_object(int depth) {
    pos_++;  // '{'
    Json obj = Json::object();
    skip_ws();
    if (peek() == '}') {
      pos_++;
      return obj;
    }
    for (;;) {
      skip_ws();
      if (peek() != '"') error("expected a string key");
      size_t key_at = pos_;
      std::string key = parse_string();
      if (obj.find(key)) error_at(key_at, ("duplicate key \"" + key + "\"").c_str());
      skip_ws();
      if (peek() != ':') error("expected ':' after the key");
      pos_++;
      skip_ws();
      Json v = parse_value(depth + 1);
      obj.members_.emplace_back(std::move(key), std::move(v));
      skip_ws();
      if (peek() == ',') {
        pos_++;
        continue;
      }
      if (peek() == '}') {
        pos_++;
        return obj;
      }
      error("expected ',' or '}' in object");
    }
  }

  Json parse_array(int depth) {
    pos_++;  // '['
    Json arr = Json::array();
    skip_ws();
    if (peek() == ']') {
      pos_++;
      return arr;
    }
    for (;;) {
      skip_ws();
      arr.items_.push_back(parse_value(depth + 1));
      skip_ws();
      if (peek() == ',') {
        pos_++;
        continue;
      }
      if (peek() == ']') {
        pos_++;
        return arr;
      }
      error("expected ',' or ']' in array");
    }
  }

  Json parse_number() {
    size_t start = pos_;
    bool integral = true;
    if (peek() == '-') {
      pos_++;
      if (consume_literal("Infinity")) return special_number(-HUGE_VAL, "-Infinity");
    }
    if (peek() == '0') {
      pos_++;
      if (peek() >= '0' && peek() <= '9') error("leading zeros are not allowed in numbers");
    } else if (peek() >= '1' && peek() <= '9') {
      while (peek() >= '0' && peek() <= '9') pos_++;
    } else {
      error("expected a digit");
    }
    if (peek() == '.') {
      integral = false;
      pos_++;
      if (!(peek() >= '0' && peek() <= '9')) error("expected a digit after '.'");
      while (peek() >= '0' && peek() <= '9') pos_++;
    }
    if (peek() == 'e' || peek() == 'E') {
      integral = false;
      pos_++;
      if (peek() == '+' || peek() == '-') pos_++;
      if (!(peek() >= '0' && peek() <= '9')) error("expected a digit in the exponent");
      while (peek() >= '0' && peek() <= '9') pos_++;
    }
    const char* first = s_.data() + start;
    const char* last = s_.data() + pos_;
    Json j;
    j.type_ = Json::Type::Number;
    j.str_.assign(first, last);
    if (integral) {
      int64_t i = 0;
      auto r = std::from_chars(first, last, i);
      if (r.ec == std::errc() && r.ptr == last) {
        j.int_ = i;
        j.int_exact_ = true;
        j.num_ = (double)i;
        return j;
      }
      // Out of int64 range: fall through to a double.
    }
    double d = 0;
    auto r = std::from_chars(first, last, d);
    if (r.ec == std::errc::result_out_of_range) error_at(start, "number out of the range of a double");
    if (r.ec != std::errc() || r.ptr != last) error_at(start, "malformed number");
    j.num_ = d;
    return j;
  }

  static int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }

  uint32_t parse_hex4() {
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
      int h = at_end() ? -1 : hex_value(s_[pos_]);
      if (h < 0) error("expected 4 hex digits after \\u");
      v = v * 16 + (uint32_t)h;
      pos_++;
    }
    return v;
  }

  static void append_utf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
      out += (char)cp;
    } else if (cp < 0x800) {
      out += (char)(0xC0 | (cp >> 6));
      out += (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += (char)(0xE0 | (cp >> 12));
      out += (char)(0x80 | ((cp >> 6) & 0x3F));
      out += (char)(0x80 | (cp & 0x3F));
    } else {
      out += (char)(0xF0 | (cp >> 18));
      out += (char)(0x80 | ((cp >> 12) & 0x3F));
      out += (char)(0x80 | ((cp >> 6) & 0x3F));
      out += (char)(0x80 | (cp & 0x3F));
    }
  }

  // Length of the valid UTF-8 sequence starting at pos_, or 0 if it is not valid.
  size_t utf8_sequence_length() const {
    auto byte = [&](size_t k) -> int {
      return pos_ + k < s_.size() ? (unsigned char)s_[pos_ + k] : -1;
    };
    auto cont = [&](size_t k, int lo, int hi) {
      int b = byte(k);
      return b >= lo && b <= hi;
    };
    int b0 = byte(0);
    if (b0 >= 0xC2 && b0 <= 0xDF) return cont(1, 0x80, 0xBF) ? 2 : 0;
    if (b0 == 0xE0) return cont(1, 0xA0, 0xBF) && cont(2, 0x80, 0xBF) ? 3 : 0;
    if ((b0 >= 0xE1 && b0 <= 0xEC) || b0 == 0xEE || b0 == 0xEF)
      return cont(1, 0x80, 0xBF) && cont(2, 0x80, 0xBF) ? 3 : 0;
    if (b0 == 0xED) return cont(1, 0x80, 0x9F) && cont(2, 0x80, 0xBF) ? 3 : 0;  // no surrogates
    if (b0 == 0xF0) return cont(1, 0x90, 0xBF) && cont(2, 0x80, 0xBF) && cont(3, 0x80, 0xBF) ? 4 : 0;
    if (b0 >= 0xF1 && b0 <= 0xF3)
      return cont(1, 0x80, 0xBF) && cont(2, 0x80, 0xBF) && cont(3, 0x80, 0xBF) ? 4 : 0;
    if (b0 == 0xF4) return cont(1, 0x80, 0x8F) && cont(2, 0x80, 0xBF) && cont(3, 0x80, 0xBF) ? 4 : 0;
    return 0;
  }

  std::string parse_string() {
    pos_++;  // opening quote
    std::string out;
    for (;;) {
      if (at_end()) error("unterminated string");
      unsigned char c = (unsigned char)s_[pos_];
      if (c == '"') {
        pos_++;
        return out;
      }
      if (c < 0x20) error("control character inside a string (must be escaped)");
      if (c == '\\') {
        pos_++;
        if (at_end()) error("unterminated escape");
        char e = s_[pos_++];
        switch (e) {
          case '"': out += '"'; break;
          case '\\': out += '\\'; break;
          case '/': out += '/'; break;
          case 'b': out += '\b'; break;
          case 'f': out += '\f'; break;
          case 'n': out += '\n'; break;
          case 'r': out += '\r'; break;
          case 't': out += '\t'; break;
          case 'u': {
            size_t esc_at = pos_ - 2;
            uint32_t cp = parse_hex4();
            if (cp >= 0xD800 && cp <= 0xDBFF) {
              if (!consume_literal("\\u")) error_at(esc_at, "high surrogate without a low surrogate");
              uint32_t lo = parse_hex4();
              if (lo < 0xDC00 || lo > 0xDFFF) error_at(esc_at, "high surrogate without a low surrogate");
              cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
              error_at(esc_at, "low surrogate without a high surrogate");
            }
            append_utf8(out, cp);
            break;
          }
          default:
            pos_--;
            error("invalid escape sequence");
        }
        continue;
      }
      if (c < 0x80) {
        out += (char)c;
        pos_++;
        continue;
      }
      size_t n = utf8_sequence_length();
      if (n == 0) error("invalid UTF-8 in a string");
      out.append(s_.data() + pos_, n);
      pos_ += n;
    }
  }
};

Json parse_json(std::string_view text, const std::string& source_name) {
  return JsonParser(text, source_name).parse_document();
}

// ---- writer ---------------------------------------------------------------------------------

Json Json::number_with_text(double d, std::string text) {
  Json j = number(d);
  j.str_ = std::move(text);
  return j;
}

std::string format_float(float f) {
  if (std::isnan(f)) return "NaN";
  if (std::isinf(f)) return f > 0 ? "Infinity" : "-Infinity";
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, f);
  return std::string(buf, r.ptr);
}

std::string format_double(double d) {
  if (std::isnan(d)) return "NaN";
  if (std::isinf(d)) return d > 0 ? "Infinity" : "-Infinity";
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, d);  // shortest round-trip form
  return std::string(buf, r.ptr);
}

static void write_string(std::string& out, const std::string& s) {
  out += '"';
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += (char)c;  // UTF-8 passes through (strings are validated on the way in)
        }
    }
  }
  out += '"';
}

static void write_value(std::string& out, const Json& v, int indent, int level) {
  auto newline = [&](int lvl) {
    if (indent < 0) return;
    out += '\n';
    out.append((size_t)(indent * lvl), ' ');
  };
  switch (v.type()) {
    case Json::Type::Null: out += "null"; break;
    case Json::Type::Bool: out += v.as_bool() ? "true" : "false"; break;
    case Json::Type::Number:
      if (!v.number_text().empty())
        out += v.number_text();
      else if (v.is_integer() && std::fabs(v.as_double()) < 9007199254740992.0)
        out += std::to_string(v.as_int64());
      else
        out += format_double(v.as_double());
      break;
    case Json::Type::String: write_string(out, v.as_string()); break;
    case Json::Type::Array:
      if (v.items().empty()) {
        out += "[]";
        break;
      }
      out += '[';
      for (size_t i = 0; i < v.items().size(); i++) {
        if (i) out += ',';
        newline(level + 1);
        write_value(out, v.items()[i], indent, level + 1);
      }
      newline(level);
      out += ']';
      break;
    case Json::Type::Object:
      if (v.members().empty()) {
        out += "{}";
        break;
      }
      out += '{';
      for (size_t i = 0; i < v.members().size(); i++) {
        if (i) out += ',';
        newline(level + 1);
        write_string(out, v.members()[i].first);
        out += indent < 0 ? ":" : ": ";
        write_value(out, v.members()[i].second, indent, level + 1);
      }
      newline(level);
      out += '}';
      break;
  }
}

std::string write_json(const Json& value, int indent) {
  std::string out;
  write_value(out, value, indent, 0);
  return out;
}

}  // namespace lcx

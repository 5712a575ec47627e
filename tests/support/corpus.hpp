// Test and benchmark support: the shared bytecode corpus (../shared/corpus, or the folder in
// EVMALLOC_CORPUS). The files are third-party data and are never copied into this project;
// where the folder is absent, callers skip with a message that says so.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#ifndef EVMALLOC_CORPUS_DEFAULT
#define EVMALLOC_CORPUS_DEFAULT "../shared/corpus"
#endif

namespace evmalloc::test
{
/// Throws E{what}; where exceptions are off, prints `what` and aborts (a broken corpus).
template <class E>
[[noreturn]] inline void corpus_error(const std::string& what)
{
#if defined(__cpp_exceptions)
    throw E(what);
#else
    std::fprintf(stderr, "corpus: %s\n", what.c_str());
    std::abort();
#endif
}

struct CorpusEntry
{
    std::string file;                ///< as in MANIFEST.tsv, e.g. "real/oz_erc20.hex"
    std::string name;                ///< file stem, e.g. "oz_erc20"
    std::vector<std::uint8_t> code;  ///< the decoded bytecode
    std::size_t instructions = 0;    ///< opcode positions, NOT counting the implicit STOP
    std::size_t jumpdests = 0;       ///< 0x5B at an instruction start
    bool synthetic = false;          ///< under synthetic/: not a real contract
};

/// The corpus folder: $EVMALLOC_CORPUS if set, else the build's default; nullopt when the
/// folder has no MANIFEST.tsv.
inline std::optional<std::filesystem::path> corpus_dir()
{
    const char* env = std::getenv("EVMALLOC_CORPUS");
    std::filesystem::path dir = (env != nullptr && *env != '\0') ? env : EVMALLOC_CORPUS_DEFAULT;
    std::error_code ec;
    if (!std::filesystem::is_regular_file(dir / "MANIFEST.tsv", ec))
        return std::nullopt;
    return dir;
}

/// Decodes lowercase or uppercase hex without 0x. \throws std::invalid_argument on bad input.
inline std::vector<std::uint8_t> from_hex(std::string_view hex)
{
    if (hex.size() % 2 != 0)
        corpus_error<std::invalid_argument>("odd-length hex");
    const auto nibble = [](char c) -> std::uint8_t {
        if (c >= '0' && c <= '9')
            return static_cast<std::uint8_t>(c - '0');
        if (c >= 'a' && c <= 'f')
            return static_cast<std::uint8_t>(c - 'a' + 10);
        if (c >= 'A' && c <= 'F')
            return static_cast<std::uint8_t>(c - 'A' + 10);
        corpus_error<std::invalid_argument>("bad hex digit");
    };
    std::vector<std::uint8_t> out(hex.size() / 2);
    for (std::size_t i = 0; i < out.size(); ++i)
        out[i] = static_cast<std::uint8_t>(nibble(hex[2 * i]) << 4 | nibble(hex[2 * i + 1]));
    return out;
}

/// Every entry of MANIFEST.tsv in `dir`, in its order, with the code loaded.
/// \throws std::runtime_error when a listed file is missing or malformed.
inline std::vector<CorpusEntry> load_corpus(const std::filesystem::path& dir)
{
    std::ifstream manifest{dir / "MANIFEST.tsv"};
    if (!manifest)
        corpus_error<std::runtime_error>("cannot open " + (dir / "MANIFEST.tsv").string());
    std::vector<CorpusEntry> entries;
    std::string line;
    std::getline(manifest, line);  // header
    while (std::getline(manifest, line))
    {
        if (line.empty())
            continue;
        std::istringstream row{line};
        CorpusEntry e;
        std::string bytes, instructions, jumpdests;
        std::getline(row, e.file, '\t');
        std::getline(row, bytes, '\t');
        std::getline(row, instructions, '\t');
        std::getline(row, jumpdests, '\t');
        e.instructions = std::stoul(instructions);
        e.jumpdests = std::stoul(jumpdests);
        e.synthetic = e.file.starts_with("synthetic/");
        e.name = std::filesystem::path{e.file}.stem().string();
        std::ifstream hex_file{dir / e.file};
        std::string hex{std::istreambuf_iterator<char>{hex_file}, std::istreambuf_iterator<char>{}};
        while (!hex.empty() && (hex.back() == '\n' || hex.back() == '\r'))
            hex.pop_back();
        e.code = from_hex(hex);
        if (!hex_file || e.code.size() != std::stoul(bytes))
            corpus_error<std::runtime_error>("corpus file missing or of the wrong size: " + e.file);
        entries.push_back(std::move(e));
    }
    return entries;
}
}  // namespace evmalloc::test

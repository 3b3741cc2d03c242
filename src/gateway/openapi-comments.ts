// Proto comments from a descriptor set's SourceCodeInfo (buf keeps it), as Markdown for the
// OpenAPI document. @bufbuild/protobuf has no reader of its own (@bufbuild/protoplugin's
// getComments would bring TypeScript 5 in as a runtime dependency); a location is found by the
// element's path of descriptor.proto field numbers and indexes.
import type { DescEnum, DescEnumValue, DescField, DescFile, DescMessage, DescMethod, DescService, JsonObject } from "@bufbuild/protobuf";
import type { SourceCodeInfo_Location } from "@bufbuild/protobuf/wkt";

// descriptor.proto's field numbers, for SourceCodeInfo paths.
const FILE_MESSAGE = 4;
const FILE_ENUM = 5;
const FILE_SERVICE = 6;
const MESSAGE_FIELD = 2;
const MESSAGE_NESTED = 3;
const MESSAGE_ENUM = 4;
const SERVICE_METHOD = 2;
const ENUM_VALUE = 2;

export type Commented = DescService | DescMethod | DescMessage | DescField | DescEnum | DescEnumValue;

/** The element's file and its path in that file's SourceCodeInfo. */
function sourceOf(desc: Commented): { file: DescFile; path: number[] } {
  const nested = (parent: DescMessage | DescEnum | DescService, tag: number, index: number) => {
    const outer = sourceOf(parent);
    return { file: outer.file, path: [...outer.path, tag, index] };
  };
  switch (desc.kind) {
    case "service":
      return { file: desc.file, path: [FILE_SERVICE, desc.file.proto.service.indexOf(desc.proto)] };
    case "rpc":
      return nested(desc.parent, SERVICE_METHOD, desc.parent.proto.method.indexOf(desc.proto));
    case "field":
      return nested(desc.parent, MESSAGE_FIELD, desc.parent.proto.field.indexOf(desc.proto));
    case "enum_value":
      return nested(desc.parent, ENUM_VALUE, desc.parent.proto.value.indexOf(desc.proto));
    case "message":
      return desc.parent
        ? nested(desc.parent, MESSAGE_NESTED, desc.parent.proto.nestedType.indexOf(desc.proto))
        : { file: desc.file, path: [FILE_MESSAGE, desc.file.proto.messageType.indexOf(desc.proto)] };
    case "enum":
      return desc.parent
        ? nested(desc.parent, MESSAGE_ENUM, desc.parent.proto.enumType.indexOf(desc.proto))
        : { file: desc.file, path: [FILE_ENUM, desc.file.proto.enumType.indexOf(desc.proto)] };
  }
}

/** A comment as Markdown: the one space after `//` dropped from each line, blank edges trimmed. */
const commentText = (raw: string) =>
  raw
    .split("\n")
    .map((line) => line.replace(/^ /, "").trimEnd())
    .join("\n")
    .trim();

/** Reads the proto comments of descriptors; each file's locations are indexed once. */
export class Comments {
  private readonly byFile = new Map<DescFile, Map<string, SourceCodeInfo_Location>>();

  /** The leading comment, else the trailing one; undefined when there is none. */
  of(desc: Commented): string | undefined {
    const { file, path } = sourceOf(desc);
    let locations = this.byFile.get(file);
    if (!locations) {
      locations = new Map((file.proto.sourceCodeInfo?.location ?? []).map((l) => [l.path.join("."), l]));
      this.byFile.set(file, locations);
    }
    const location = locations.get(path.join("."));
    const text = commentText(location?.leadingComments || location?.trailingComments || "");
    return text || undefined;
  }
}

/** `description` (when there is one) and `deprecated` (when set), to spread into an object. */
export function documented(comments: Comments, desc: Commented): JsonObject {
  const description = comments.of(desc);
  const deprecated = desc.kind !== "enum_value" && desc.deprecated;
  return { ...(description ? { description } : {}), ...(deprecated ? { deprecated: true } : {}) };
}

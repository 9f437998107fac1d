/** How node webgpu picks and names its Vulkan driver, without starting Dawn (vulkan.ts). */
import { describe, expect, it } from 'vitest';
import { SWIFTSHADER_ICD, chooseVulkanDriver, describeIcd, systemDriver } from '../../src/runtime/vulkan.js';

describe('describeIcd', () => {
  it('calls the CPU drivers software and the GPU vendors hardware, by manifest name', () => {
    expect(describeIcd(SWIFTSHADER_ICD)).toEqual({ name: 'SwiftShader (Vulkan on the CPU)', software: true });
    expect(describeIcd('/usr/share/vulkan/icd.d/lvp_icd.x86_64.json')).toEqual({ name: "lavapipe (Mesa's Vulkan on the CPU)", software: true });
    expect(describeIcd('/etc/vulkan/icd.d/nvidia_icd.json')).toEqual({ name: 'NVIDIA Vulkan driver', software: false });
    expect(describeIcd('/usr/share/vulkan/icd.d/radeon_icd.x86_64.json').software).toBe(false);
    expect(describeIcd('/opt/x/some_vendor.json')).toEqual({ name: 'some_vendor.json', software: false });
  });
});

describe('systemDriver', () => {
  it('follows VK_ICD_FILENAMES: software only when every listed driver is', () => {
    expect(systemDriver({ VK_ICD_FILENAMES: SWIFTSHADER_ICD })).toEqual({
      name: `VK_ICD_FILENAMES=${SWIFTSHADER_ICD}: SwiftShader (Vulkan on the CPU)`,
      software: true,
    });
    expect(systemDriver({ VK_ICD_FILENAMES: `${SWIFTSHADER_ICD}:/etc/vulkan/icd.d/nvidia_icd.json` }).software).toBe(false);
    expect(systemDriver({ VK_ICD_FILENAMES: '::' }).software).toBe(false);
    // the loader's newer variable wins over the old one, and is named as such
    expect(systemDriver({ VK_DRIVER_FILES: '/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json', VK_ICD_FILENAMES: SWIFTSHADER_ICD })).toEqual({
      name: 'VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json: NVIDIA Vulkan driver',
      software: false,
    });
  });
});

describe('chooseVulkanDriver', () => {
  it('swiftshader and an explicit vulkanIcd set VK_ICD_FILENAMES; a user export stands', async () => {
    expect(await chooseVulkanDriver('swiftshader', undefined, false, {})).toEqual({
      icd: SWIFTSHADER_ICD,
      adapter: { name: 'SwiftShader (Vulkan on the CPU)', software: true, choice: 'swiftshader' },
    });
    expect(await chooseVulkanDriver('auto', '/x/nvidia_icd.json', false, {})).toEqual({
      icd: '/x/nvidia_icd.json',
      adapter: { name: 'NVIDIA Vulkan driver', software: false, choice: 'auto' },
    });
    const mine = await chooseVulkanDriver('auto', undefined, false, { VK_ICD_FILENAMES: SWIFTSHADER_ICD });
    expect(mine.icd).toBeUndefined();
    expect(mine.adapter).toMatchObject({ software: true, choice: 'auto' });
    expect(mine.adapter.fallback).toBeUndefined();
  });

  it('gpu refuses a software driver the user exported, or one this process already started on', async () => {
    await expect(chooseVulkanDriver('gpu', undefined, false, { VK_ICD_FILENAMES: SWIFTSHADER_ICD })).rejects.toMatchObject({
      name: 'UserError',
      message: `webgpu: no hardware WebGPU adapter: VK_ICD_FILENAMES=${SWIFTSHADER_ICD}: SwiftShader (Vulkan on the CPU) is a software driver; fix: unset VK_ICD_FILENAMES to use the system's Vulkan drivers`,
    });
    await expect(chooseVulkanDriver('gpu', undefined, true, { VK_ICD_FILENAMES: SWIFTSHADER_ICD })).rejects.toThrow(
      /already started in this process on .*SwiftShader/,
    );
    await expect(chooseVulkanDriver('gpu', undefined, false, { VK_DRIVER_FILES: SWIFTSHADER_ICD })).rejects.toThrow(/; fix: unset VK_DRIVER_FILES to use/);
  });

  it('auto leaves a VK_DRIVER_FILES export alone: no probe, no SwiftShader behind it', async () => {
    const r = await chooseVulkanDriver('auto', undefined, false, { VK_DRIVER_FILES: '/x/nvidia_icd.json' });
    expect(r).toEqual({ adapter: { name: 'VK_DRIVER_FILES=/x/nvidia_icd.json: NVIDIA Vulkan driver', software: false, choice: 'auto' } });
  });
});
